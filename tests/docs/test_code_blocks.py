"""Every shell and Python block of the README and the documentation runs as written, at tiny
sizes, against a fake data root in the publishers' layouts; a snippet that fails verbatim fails
here. A block that cannot run on this machine is marked in its page with
``<!-- not run: the reason -->`` on the line above it, and the reason is shown as the skip.

Blocks of one page run in order in one folder (a trained run of one block is the checkpoint of
the next), where ``runs/a``, ``runs/b`` and ``best.pt`` (a default network trained for two steps)
and ``scan.png`` / ``scans/`` already exist. ``/data``, ``DIR`` and ``DEV`` name the fake root;
``runs/<run>`` is ``runs/a``. Training commands get tiny sizes appended (the flags win over the
page's: 32 px, tiny widths, two steps, budgets of 4 masks and 8 labels). A two-step network ranks
no hospital's images, so ``adapt`` (which rightly refuses such scores) sees the scores of one that
does, as in ``tests/runs/test_adapt_calibrate.py``.
"""

from __future__ import annotations

import importlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import fake_trees
import numpy as np
import pytest
from skimage import io as skio

from multimix.runs import operating_point
from multimix.runs.cli import COMMANDS, main

from helpers import REPO_ROOT, TINY, tiny_cli_args

pytestmark = pytest.mark.slow

PAGES = [REPO_ROOT / "README.md"] + sorted(
    p for p in (REPO_ROOT / "docs").rglob("*.md") if not {"_build", "generated"} & set(p.parts)
)
BLOCK = re.compile(
    r"(?:<!-- not run: (?P<reason>[^>]+?) -->\n)?^```(?P<lang>bash|python)\n(?P<body>.*?)^```", re.S | re.M
)
# what CI itself does (install, the suite, the linters, the site build): not run again from a page
CI_STEPS = (("pip",), ("git",), ("cd",), ("python", "-m", "pip"), ("python", "-m", "pytest"), ("python", "-m", "mypy"))
CI_TOOLS = ("lint-imports", "ruff", "sphinx-build")
# flags appended where a command has them (tiny sizes; the appended flag wins)
TINY_FLAGS = {
    "--steps": "2",
    "--seg-labels": "4",
    "--cls-labels": "8",
    "--labels": "8",
    "--k": "4",
    "--bootstrap": "20",
    "--sizes": "32",
    "--repeats": "1",
    "--warmup": "0",
    "--loader-workers": "0",
    "--no-memory": None,
    "--no-progress": None,
}
# commands that never finish (a server) or need hardware this machine lacks: flags parsed, not run
PARSE_ONLY = ("serve",)


def blocks(page: Path) -> list[tuple[str, str, str | None]]:
    return [(m["lang"], m["body"], m["reason"]) for m in BLOCK.finditer(page.read_text())]


def test_every_page_with_code_is_collected():
    assert {p.name for p in PAGES} >= {"README.md", "getting-started.md", "own-data.md", "using-a-model.md"}
    assert sum(len(blocks(p)) for p in PAGES) >= 30


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """The fake data root and a default network trained for two steps (its run folder)."""
    base = tmp_path_factory.mktemp("docs-world")
    root = fake_trees.published_root(base / "data")
    run = base / "trained"
    default_network = [
        word for key, value in TINY.items() if key != "model.widths" for word in ("--set", f"{key}={value}")
    ]
    assert main(["train", *default_network, "--steps", "2", "--no-progress", "--out", str(run)]) == 0
    return root, run


def substitute(text: str, root: Path) -> str:
    text = text.replace("runs/<run>", "runs/a").replace("/data/cxr", str(root))
    text = re.sub(r"(?<![\w/.])/data(?=[/\s\"']|$)", str(root), text, flags=re.M)
    return re.sub(r"\b(DIR|DEV)\b", str(root), text)


def shell_commands(body: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", body)
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            found.append(words[:cut])
            words = words[cut + 1 :]
    return [w for w in found if w]


def with_tiny_sizes(name: str, args: list[str]) -> list[str]:
    module = importlib.import_module(f"multimix.runs.commands.{COMMANDS.get(name).module}")
    known = {opt for action in module.build_parser()._actions for opt in action.option_strings}
    extra: list[str] = []
    for flag, value in TINY_FLAGS.items():
        if flag in known:
            extra += [flag] if value is None else [flag, value]
    if "--set" in known:
        extra += tiny_cli_args()
    if name == "prepare-data":
        extra += ["--image-size", str(TINY["data.image_size"])]
    return args + extra


def run_multimix(args: list[str]) -> None:
    name, rest = args[0], args[1:]
    if name in PARSE_ONLY or "cuda" in rest:
        module = importlib.import_module(f"multimix.runs.commands.{COMMANDS.get(name).module}")
        module.build_parser().parse_args(rest)
        return
    status = main([name, *with_tiny_sizes(name, rest)])
    assert status == 0, f"`multimix {shlex.join(args)}` exited with {status}"


def run_shell(body: str) -> None:
    for words in shell_commands(body):
        if any(tuple(words[: len(step)]) == step for step in CI_STEPS) or words[0] in CI_TOOLS:
            continue
        if words[0] == "multimix":
            run_multimix(words[1:])
        elif words[0] == "python" and words[1].startswith("scripts/"):
            run_multimix([Path(words[1]).stem.replace("_", "-"), *words[2:]])
        elif words[0] == "python" and words[1].startswith("examples/"):
            done = subprocess.run(
                [sys.executable, str(REPO_ROOT / words[1]), *words[2:]], capture_output=True, text=True
            )
            assert done.returncode == 0, f"`{shlex.join(words)}` exited with {done.returncode}: {done.stderr[-2000:]}"
        else:
            pytest.fail(f"a block runs {words[0]!r}, which this test does not know; mark it not run, with the reason")


_scores = operating_point.pneumonia_probabilities


def ranking_scores(predictor, files, **kwargs):
    """Scores of a model that ranks: two humps, one image in three pneumonia."""
    _, used = _scores(predictor, files, **kwargs)
    z = np.where(np.arange(len(used)) % 3 == 0, 2.0, -2.0) + np.linspace(-1, 1, len(used))
    return 1 / (1 + np.exp(-z)), used


def furnish(folder: Path, run: Path) -> None:
    """What a page takes for granted: trained runs, a checkpoint, an image and a folder of them."""
    for name in ("a", "b"):
        shutil.copytree(run, folder / "runs" / name)
    shutil.copy(run / "checkpoints" / "best.pt", folder / "best.pt")
    rng = np.random.default_rng(0)
    for path in (folder / "scan.png", folder / "scans" / "one.png", folder / "scans" / "two.png"):
        path.parent.mkdir(parents=True, exist_ok=True)
        skio.imsave(path, (rng.random((48, 48)) * 255).astype(np.uint8), check_contrast=False)


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_the_blocks_of_a_page_run_as_written(page, world, tmp_path, monkeypatch):
    root, run = world
    monkeypatch.setattr(operating_point, "pneumonia_probabilities", ranking_scores)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MULTIMIX_CACHE", str(tmp_path / "cache"))
    furnish(tmp_path, run)
    skipped = []
    for lang, body, reason in blocks(page):
        if reason:
            skipped.append(reason)
            continue
        body = substitute(body, root)
        if lang == "bash":
            run_shell(body)
        else:
            script = tmp_path / "block.py"
            script.write_text(body)
            proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
            assert proc.returncode == 0, f"a Python block of {page.name} failed:\n{body}\n{proc.stderr[-3000:]}"
    if skipped and len(skipped) == len(blocks(page)):
        pytest.skip("; ".join(skipped))
