"""What the fault tests share: a tiny training through scripts/train.py, its finished run, one
error line, evaluate/predict in-process, and PNGs of every Pillow mode."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import io as skio

from multimix.runs.commands import evaluate as evaluate_command
from multimix.runs.commands import predict as predict_command

from helpers import REPO_ROOT, tiny_cli_args

ROOT = REPO_ROOT
SAMPLES = ROOT.parent / "shared" / "data"


def script(name: str):
    """``scripts/<name>.py``'s ``main``, imported in-process (no interpreter start per call)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def train(out: Path, *extra: str) -> int:
    """A tiny ``train.py`` run; batch size and device as flags, so ``extra`` flags can override them."""
    tiny = tiny_cli_args()
    pairs = [tiny[i : i + 2] for i in range(0, len(tiny), 2)]
    tiny = [a for pair in pairs if not pair[1].startswith(("data.batch_size", "train.device")) for a in pair]
    return script("train")(
        [
            "--seg-labels",
            "4",
            "--cls-labels",
            "8",
            "--out",
            str(out),
            "--no-progress",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            *tiny,
            *extra,
        ]
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def copy_run(run: Path, to: Path) -> Path:

    shutil.copytree(run, to)
    return to


def evaluate(checkpoint: Path, out: Path) -> int:
    return evaluate_command.main(
        ["--checkpoint", str(checkpoint), "--out", str(out), "--bootstrap", "20", "--samples", "1", "--no-progress"]
    )


def predict(inputs: Path, checkpoint: Path, out: Path) -> int:
    return predict_command.main([str(inputs), "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress"])


def png(path: Path, mode: str = "L", side: int = 24, value: int = 128) -> Path:
    """A PNG in Pillow ``mode`` whose gray level is ``value`` (of 255) everywhere."""
    gray = Image.new("L", (side, side), value)
    if mode == "I;16":
        Image.fromarray(np.full((side, side), value * 257, np.uint16)).save(path)
    elif mode == "I":  # 32-bit integers holding 16-bit values (TIFF; Pillow's mode for some 16-bit files)
        Image.fromarray(np.full((side, side), value * 257, np.int32)).save(path.with_suffix(".tif"))
        return path.with_suffix(".tif")
    elif mode == "CMYK":
        gray.convert("RGB").convert("CMYK").save(path.with_suffix(".jpg"))
        return path.with_suffix(".jpg")
    else:
        gray.convert(mode).save(path)
    return path


def rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


def flat_png(path: Path, value: int, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.add.outer(np.arange(size), np.arange(size)) * 3 + value, 0, 255).astype(np.uint8)
    skio.imsave(path, pixels, check_contrast=False)
    return path
