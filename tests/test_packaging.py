"""The installed package behaves like the checkout: a wheel in a fresh (non-editable) venv, run
from an empty folder, resolves the same config and trains to the same numbers."""

import importlib.util
import json
import os
import subprocess
import sys
import venv

import pytest
import yaml

from multimix.runs.commands.train import FLAG_KEYS, parse_args
from multimix.runs.flags import resolve_config

from helpers import REPO_ROOT

COMMAND = ["train", "--seg-labels", "10", "--cls-labels", "100"]
SHORT = [
    "--steps",
    "4",
    "--steps-per-epoch",
    "2",
    "--device",
    "cpu",
    "--precision",
    "fp32",
    "--no-progress",
]  # same on both sides; fp32: `auto` measures the CPU, which a busy machine may measure otherwise
TIMINGS = {"wall_seconds", "train_images_per_second"}


def _run(args, cwd, env=None):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc.stdout


pytestmark = pytest.mark.slow  # builds and installs a wheel (about 1.5 minutes); CI runs it on its own


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv holding the wheel of this checkout (its heavy dependencies from the base environment)."""
    base = tmp_path_factory.mktemp("wheel")
    isolation = (
        [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    )  # offline when it can
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation, "-q", "-w", str(base / "dist"), str(REPO_ROOT)],
        cwd=base,
    )
    (wheel,) = (base / "dist").glob("multimix-*.whl")
    venv.create(base / "venv", system_site_packages=True)
    bin_dir = base / "venv" / ("Scripts" if os.name == "nt" else "bin")
    _run(
        [sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--no-deps", "-q", str(wheel)],
        cwd=base,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return bin_dir, env


def test_multimix_train_from_the_wheel_equals_scripts_train_in_the_checkout(installed, tmp_path):
    bin_dir, env = installed
    empty = tmp_path / "empty"
    empty.mkdir()
    # the wheel's own code and configs, not the checkout's
    where = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "import multimix, multimix.config as c; print(multimix.__file__); "
            "print(c.PACKAGED_CONFIGS); print(len(c.packaged_config_names()))",
        ],
        cwd=empty,
        env=env,
    ).split()
    assert all(str(bin_dir.parent) in w and str(REPO_ROOT) not in w for w in where[:2])
    assert int(where[2]) >= 11  # multimix, paper, real, finetune, distill and the six baselines
    # the same resolved config, for the command exactly as documented
    wheel_cfg = yaml.safe_load(_run([str(bin_dir / "multimix"), *COMMAND, "--print-config"], cwd=empty, env=env))
    checkout_cfg = resolve_config(parse_args(COMMAND[1:]), FLAG_KEYS).to_dict()  # what scripts/train.py resolves
    assert wheel_cfg == checkout_cfg and wheel_cfg["model"]["widths"] == [16, 32, 64, 128]
    # the same numbers, on a few steps of that command
    _run([str(bin_dir / "multimix"), *COMMAND, *SHORT, "--out", str(tmp_path / "wheel")], cwd=empty, env=env)
    _run([sys.executable, "scripts/train.py", *COMMAND[1:], *SHORT, "--out", str(tmp_path / "checkout")], cwd=REPO_ROOT)
    assert sorted(p.name for p in empty.iterdir()) == []  # nothing written beside the user's working folder
    runs = {}
    for side in ("wheel", "checkout"):
        folder = tmp_path / side
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["train"].pop("out")
        summary = {k: v for k, v in json.loads((folder / "summary.json").read_text()).items() if k not in TIMINGS}
        summary["calibration"].pop("created")  # a clock reading, not a result
        losses = [
            (r["step"], r.get("loss")) for r in map(json.loads, (folder / "metrics.jsonl").read_text().splitlines())
        ]
        runs[side] = (config, summary, losses, (folder / "split.json").read_text())
    assert runs["wheel"] == runs["checkout"]
    assert runs["wheel"][1]["in_domain"]["accuracy"] >= 0  # a real summary, not an empty one
