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
    names = [
        m.name
        for m in pkgutil.walk_packages(multimix.__path__, "multimix.")
        if not m.name.startswith("multimix.serve.app")
    ]
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    proc = subprocess.run([sys.executable, "-c", code, *names], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert importlib.import_module("multimix.runs.cli").COMMANDS


def _distribution_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_directly_imported_package_is_declared():
    import ast
    import importlib.metadata

    tomllib = importlib.import_module("tomllib") if sys.version_info >= (3, 11) else None
    if tomllib is None:  # pragma: no cover - Python 3.10 has no tomllib
        return
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    requirements = [
        *project["dependencies"],
        *(r for extra in project["optional-dependencies"].values() for r in extra),
    ]
    declared = {_distribution_key(re.split(r"[<>=!~\[ ;]", r, maxsplit=1)[0]) for r in requirements}
    imported = set()
    for path in (REPO_ROOT / "multimix").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = sorted(imported - set(sys.stdlib_module_names) - {"multimix"})
    distributions = importlib.metadata.packages_distributions()
    undeclared = [
        name
        for name in third_party
        if not any(_distribution_key(d) in declared for d in distributions.get(name, [name]))
    ]
    assert undeclared == []
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License") and project["license"] == "MIT"
    assert (REPO_ROOT / "multimix" / "py.typed").exists()
