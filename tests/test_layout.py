"""The package's shape as users rely on it: the library logs instead of printing, and every
subpackage is importable on its own (no hidden import order)."""

import importlib
import pkgutil
import re
import subprocess
import sys

import multimix

from helpers import REPO_ROOT

PRINTING_ALLOWED = ("multimix/runs/cli.py", "multimix/runs/commands/")  # the command line's own output


def test_library_modules_log_instead_of_printing():
    offenders = []
    for path in sorted((REPO_ROOT / "multimix").rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative.startswith(PRINTING_ALLOWED):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"(?<![\w.])print\(", line):
                offenders.append(f"{relative}:{number}")
    assert offenders == []


def test_every_module_imports_in_a_fresh_interpreter():
    names = [m.name for m in pkgutil.walk_packages(multimix.__path__, "multimix.") if not m.name.startswith("multimix.serve.app")]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert importlib.import_module("multimix.runs.cli").COMMANDS
