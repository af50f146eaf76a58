"""A hospital-like tree end to end: DICOM files (some compressed), labels and patients in a CSV.

It trains with ``multimix train --cls-sources csv:...``, evaluates and predicts, and every number
equals the one the same pixels give as PNG files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

pydicom = pytest.importorskip("pydicom")
from fake_trees import dicom  # noqa: E402
from pydicom.uid import JPEG2000Lossless, RLELossless  # noqa: E402

from multimix.runs.cli import main as multimix  # noqa: E402

from helpers import tiny_cli_args  # noqa: E402

SIDE, IMAGES = 40, 24


def packed_syntax() -> str:
    """JPEG 2000 lossless where its encoder is installed (the dicom extra), else RLE (pydicom's own)."""
    try:
        import openjpeg  # noqa: F401
    except ImportError:
        return RLELossless
    return JPEG2000Lossless


PACKED = packed_syntax()


def hospital_trees(root: Path) -> dict[str, Path]:
    """The same images twice: ``dicom/`` (a third of them compressed) and ``png/``, each with
    ``labels.csv`` (path, label, patient, mask); lung masks are PNG in both."""
    rng = np.random.default_rng(0)
    tables = {}
    for kind in ("dicom", "png"):
        (root / kind).mkdir(parents=True)
        tables[kind] = ["path,label,patient,mask"]
    for i in range(IMAGES):
        label = "pneumonia" if i % 3 else "normal"
        image = (rng.random((SIDE, SIDE)) * 200 + (55 if label == "pneumonia" else 0)).astype(np.uint8)
        lung = np.zeros((SIDE, SIDE), np.uint8)
        lung[8:32, 6:18] = lung[8:32, 22:34] = 255
        for kind in ("dicom", "png"):
            name = f"x{i:02d}.dcm" if kind == "dicom" else f"x{i:02d}.png"
            if kind == "dicom":
                # 8-bit values with the window mapping 0..255 to black..white: the display image is
                # value / 255, exactly an 8-bit PNG's
                syntax = PACKED if i % 3 == 0 else None
                dicom(root / kind / name, image, window=(128, 256), bits_stored=16, patient=f"P{i // 2}", syntax=syntax)
            else:
                skio.imsave(root / kind / name, image, check_contrast=False)
            mask = ""
            if i < 12:
                skio.imsave(root / kind / f"m{i:02d}.png", lung, check_contrast=False)
                mask = f"m{i:02d}.png"
            tables[kind].append(f"{name},{label},P{i // 2},{mask}")
    for kind, lines in tables.items():
        (root / kind / "labels.csv").write_text("\n".join(lines) + "\n")
    return {kind: root / kind / "labels.csv" for kind in tables}


def train(root: Path, table: Path, out: Path) -> None:
    spec = f"csv:{table}"
    args = ["train", "--data-root", str(root), "--seg-labels", "4", "--cls-labels", "6", "--steps", "2"]
    args += ["--seg-sources", spec, "--cls-sources", spec, "--cross-seg-sources", "", "--cross-cls-sources", ""]
    args += ["--set", f"real.cache_dir={root / 'cache'}", "--out", str(out), "--no-progress", *tiny_cli_args()]
    assert multimix(args) == 0


def predictions(folder: Path, checkpoint: Path, out: Path) -> dict[str, float]:
    args = ["predict", str(folder), "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress"]
    assert multimix(args) == 0
    with open(out / "predictions.csv", newline="") as handle:
        return {Path(r["file"]).stem: float(r["p_pneumonia"]) for r in csv.DictReader(handle) if r["status"] == "ok"}


def test_a_dicom_tree_with_a_csv_trains_evaluates_and_predicts_as_its_png_twin(tmp_path):
    tables = hospital_trees(tmp_path)
    for kind in ("dicom", "png"):
        train(tmp_path, tables[kind], tmp_path / f"run-{kind}")
    runs = {kind: tmp_path / f"run-{kind}" for kind in ("dicom", "png")}
    losses = {k: [json.loads(line) for line in (r / "metrics.jsonl").read_text().splitlines()] for k, r in runs.items()}
    for step in (*losses["dicom"], *losses["png"]):
        step.pop("time", None), step.pop("images_per_second", None)
    assert losses["dicom"] == losses["png"]  # the same pixels, split and seeds: the same steps
    summaries = {k: json.loads((r / "summary.json").read_text()) for k, r in runs.items()}
    assert summaries["dicom"]["in_domain"] == pytest.approx(summaries["png"]["in_domain"])
    for run in runs.values():
        assert multimix(["evaluate", "--checkpoint", str(run / "checkpoints" / "best.pt"), "--bootstrap", "20"]) == 0
    metrics = {k: json.loads((r / "evaluation" / "metrics.json").read_text()) for k, r in runs.items()}
    in_domain = {k: m["models"][0]["domains"]["in-domain"] for k, m in metrics.items()}
    for task in ("classification", "segmentation"):
        values = {
            k: {name: v.get("value", v.get("mean")) for name, v in d[task]["metrics"].items()}
            for k, d in in_domain.items()
        }
        assert values["dicom"] == pytest.approx(values["png"], nan_ok=True), task
    best = runs["dicom"] / "checkpoints" / "best.pt"
    from_dicom = predictions(tmp_path / "dicom", best, tmp_path / "pred-dicom")
    from_png = predictions(tmp_path / "png", best, tmp_path / "pred-png")
    images = {f"x{i:02d}" for i in range(IMAGES)}
    assert images <= set(from_dicom) and images <= set(from_png)
    for name in images:
        assert from_dicom[name] == pytest.approx(from_png[name], abs=1e-6), name
