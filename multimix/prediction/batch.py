"""Prediction over many files: find them, run them in batches, write pictures and a CSV as it goes."""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from multimix.data.dicom import has_dicom_signature
from multimix.data.pixels import ImageReadError
from multimix.prediction.overlays import prediction_pictures, write_png
from multimix.prediction.predictor import CLASS_NAMES, Prediction, Predictor
from multimix.prediction.reader import IMAGE_SUFFIXES, read_input_image
from multimix.utils.csv_safe import SafeDictWriter

CSV_COLUMNS = (
    "file",
    "status",
    "error",
    "predicted_class",
    *(f"p_{name}" for name in CLASS_NAMES),
    "class_threshold",
    "lung_fraction",
    "width",
    "height",
    "mask_png",
    "saliency_png",
    "boundary_png",
)


def expand_inputs(inputs: Iterable[str], *, exclude: str | Path | None = None) -> list[Path]:
    """Files named, found under folders (recursively, by image suffix) or matched by globs,
    in order and without repeats; nothing under ``exclude`` (the output folder, so a second
    run never predicts the first one's pictures)."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            # broken links are kept, so their rows name them instead of leaving them out unseen
            found += sorted(p for p in path.rglob("*") if (p.is_file() or p.is_symlink()) and _looks_like_an_image(p))
        elif path.is_file() or path.is_symlink():
            found.append(path)
        else:
            found += sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
    if exclude is not None:
        skip = Path(exclude).resolve()
        found = [p for p in found if not p.resolve().is_relative_to(skip)]
    return list(dict.fromkeys(found))


def _looks_like_an_image(path: Path) -> bool:
    """An image suffix, or DICOM content under any name (PACS exports carry no suffix)."""
    return path.suffix.lower() in IMAGE_SUFFIXES or has_dicom_signature(path)


def output_names(files: Sequence[Path]) -> list[str]:
    """A distinct, file-system-safe stem per input (``a/x.png`` and ``b/x.png`` both need one)."""
    names, used = [], set()
    for path in files:
        base = path.stem
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}-{k}"
        used.add(name)
        names.append(name)
    return names


@dataclass
class PredictionReport:
    csv_path: Path
    done: int = 0
    failed: int = 0


def predict_files(
    files: Sequence[Path],
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    batch_size: int = 16,
    device: str = "auto",
    seg_threshold: float = 0.5,
    clean_masks: bool | None = None,
    class_threshold: float | None = None,
    progress: bool = True,
) -> PredictionReport:
    """Predict every file, writing ``NAME_{mask,saliency,boundary}.png`` and ``predictions.csv``
    (one row per file, flushed after every batch) into ``out_dir``. Unreadable files get an
    ``error`` row and a message on stderr; they never stop the run. Arguments and the
    checkpoint are checked before anything in ``out_dir`` is touched. The class decision uses the
    checkpoint's operating point unless ``class_threshold`` is given."""
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if not 0 < seg_threshold < 1:
        raise ValueError(f"the mask threshold must be between 0 and 1, got {seg_threshold}")
    if class_threshold is not None and not 0 < class_threshold < 1:
        raise ValueError(f"the class threshold must be between 0 and 1, got {class_threshold}")
    predictor = Predictor(
        checkpoint, device=device, seg_threshold=seg_threshold, clean_masks=clean_masks, class_threshold=class_threshold
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = PredictionReport(out / "predictions.csv")
    names = output_names(files)
    with open(report.csv_path, "w", newline="") as handle:
        writer = SafeDictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        bar = tqdm(total=len(files), desc="predict", unit="image", disable=not progress)
        for start in range(0, len(files), batch_size):
            chunk = list(zip(files[start : start + batch_size], names[start : start + batch_size], strict=True))
            for row in _predict_chunk(predictor, chunk, out):
                writer.writerow(row)
                report.done += row["status"] == "ok"
                report.failed += row["status"] != "ok"
            handle.flush()
            os.fsync(handle.fileno())
            bar.update(len(chunk))
        bar.close()
    return report


def _predict_chunk(predictor: Predictor, chunk: list[tuple[Path, str]], out: Path) -> list[dict]:
    rows, images, readable = [], [], []
    for path, name in chunk:
        try:
            images.append(read_input_image(path))
            readable.append((path, name))
        except ImageReadError as err:
            tqdm.write(f"skipped: {err}", file=sys.stderr)
            rows.append({"file": str(path), "status": "error", "error": str(err)})
    if readable:
        for (path, name), image, prediction in zip(readable, images, predictor.predict(images), strict=True):
            rows.append(_write_outputs(path, name, image, prediction, out))
    return rows


def _write_outputs(path: Path, name: str, image: np.ndarray, prediction: Prediction, out: Path) -> dict:
    row = {"file": str(path), "status": "ok", "error": "", "width": image.shape[1], "height": image.shape[0]}
    if prediction.probabilities is not None:
        row["predicted_class"] = prediction.class_name
        row["class_threshold"] = f"{prediction.threshold:.6f}"
        row.update({f"p_{c}": f"{p:.6f}" for c, p in zip(CLASS_NAMES, prediction.probabilities, strict=False)})
    if prediction.lung_fraction is not None:
        row["lung_fraction"] = f"{prediction.lung_fraction:.6f}"
    for kind, picture in prediction_pictures(image, prediction.lung_mask, prediction.saliency).items():
        target = out / f"{name}_{kind}.png"
        write_png(target, picture)
        row[f"{kind}_png"] = target.name
    return row
