"""Choose a trained model's operating point for a new hospital and store it in a new checkpoint.

* :func:`adapt_checkpoint`: label-free, from the hospital's unlabeled images
  (``multimix adapt``);
* :func:`calibrate_checkpoint`: from labeled images of one or more sources
  (``multimix calibrate``).

Both write a copy of the checkpoint with an ``operating_point`` entry
(:class:`~multimix.metrics.operating_point.OperatingPoint`); the input checkpoint is never
changed. ``evaluate``, ``predict`` and ``serve`` decide with that threshold unless told another.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from multimix.config import Config
from multimix.config.run_info import RunInfo
from multimix.data.pixels import ImageReadError
from multimix.data.records import file_identity, image_identity
from multimix.evaluation.inference import infer
from multimix.metrics.calibration import Calibration
from multimix.metrics.operating_point import (
    CHECKPOINT_KEY,
    OperatingPoint,
    adapt_threshold,
    calibrate_threshold,
)
from multimix.models.factory import model_from_checkpoint
from multimix.prediction import Predictor
from multimix.prediction.batch import expand_inputs
from multimix.prediction.reader import read_input_image
from multimix.runs.held_out import load_split, source_records
from multimix.utils.checkpoints import check_output_path, load_checkpoint, save_checkpoint
from multimix.utils.device import resolve_device

logger = logging.getLogger(__name__)

UNIFORM_PRIOR = (0.5, 0.5)


def _check_output(checkpoint: str | Path, out: str | Path, force: bool = False) -> Path:
    source = Path(checkpoint)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such checkpoint")
    target = check_output_path(out, inputs=(source,), force=force)
    if target.suffix != ".pt":
        raise ValueError(f"{target}: a checkpoint file name ends in .pt")
    return target


def write_with_operating_point(state: dict[str, Any], point: OperatingPoint, out: str | Path) -> Path:
    """A copy of the loaded checkpoint ``state`` carrying ``point`` (written atomically)."""
    state = {**state, CHECKPOINT_KEY: point.to_dict()}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    return save_checkpoint(state, out)


def source_prior(state: dict[str, Any]) -> tuple[float, float]:
    """The class prior a checkpoint's posteriors assume: stored at training (``run.class_prior``);
    uniform for older checkpoints."""
    stored = RunInfo.from_checkpoint(state, origin="checkpoint").class_prior if RunInfo.recorded(state) else None
    if stored is None or len(stored) != 2:
        logger.info("note: the checkpoint records no training class prior; assuming the classes were balanced")
        return UNIFORM_PRIOR
    return float(stored[0]), float(stored[1])


def calibration(state: dict[str, Any]) -> Calibration | None:
    """The calibration of a checkpoint's classifier, fitted on its run's validation images at the
    end of training (None, with a note, for checkpoints trained before it was stored)."""
    stored = Calibration.from_checkpoint(state)
    if stored is None:
        logger.info("note: the checkpoint stores no calibration; reading its posteriors as they are")
    return stored


def pneumonia_probabilities(
    predictor: Predictor, files: Sequence[Path], *, batch_size: int = 16, progress: bool = True
) -> tuple[np.ndarray, list[Path]]:
    """p(pneumonia) of every readable file (unreadable ones are named on stderr and left out)."""
    probs: list[float] = []
    used: list[Path] = []
    bar = tqdm(total=len(files), desc="score images", unit="image", disable=not progress)
    for start in range(0, len(files), batch_size):
        images, readable = [], []
        for path in files[start : start + batch_size]:
            try:
                images.append(read_input_image(path))
                readable.append(path)
            except ImageReadError as err:
                tqdm.write(f"skipped: {err}", file=sys.stderr)
        for path, prediction in zip(readable, predictor.predict(images), strict=True):
            if prediction.probabilities is None:
                raise ValueError(f"{predictor.checkpoint}: this model has no classifier, so it has no operating point")
            probs.append(float(prediction.probabilities[1]))
            used.append(path)
        bar.update(len(files[start : start + batch_size]))
    bar.close()
    return np.asarray(probs), used


def adapt_checkpoint(
    checkpoint: str | Path,
    images: Sequence[str],
    out: str | Path,
    *,
    method: str = "prior-em",
    device: str = "auto",
    batch_size: int = 16,
    progress: bool = True,
    force: bool = False,
) -> OperatingPoint:
    """Label-free operating point from a new hospital's images (files, folders, globs); writes
    ``out`` (an existing checkpoint only with ``force``) and returns the point."""
    target = _check_output(checkpoint, out, force)
    files = expand_inputs(images)
    if not files:
        raise ValueError(f"no image files found in {' '.join(images)}")
    predictor = Predictor(checkpoint, device=device, class_threshold=0.5)
    probs, used = pneumonia_probabilities(predictor, files, batch_size=batch_size, progress=progress)
    if len(used) == 0:
        raise ValueError(f"none of the {len(files)} files in {' '.join(images)} could be read as an image")
    state = load_checkpoint(checkpoint, map_location="cpu")
    point = adapt_threshold(
        probs, method, source_prior=source_prior(state), calibration=calibration(state), fitted_on=", ".join(images)
    )
    point = dataclasses.replace(point, image_ids=[file_identity(path) for path in used])
    write_with_operating_point(state, point, target)
    return point


def calibration_config(cfg: Config, data_root: str | None) -> Config:
    """The run's config, reading real data under ``data_root`` when given."""
    if not data_root:
        return cfg
    return dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, source="real"),
        real=dataclasses.replace(cfg.real, root=str(Path(data_root).expanduser().resolve())),
    )


def calibrate_checkpoint(
    checkpoint: str | Path,
    sources: Sequence[str],
    out: str | Path,
    *,
    data_root: str | None = None,
    method: str = "youden",
    sensitivity: float = 0.9,
    device: str = "auto",
    batch_size: int = 32,
    progress: bool = True,
    force: bool = False,
) -> OperatingPoint:
    """Operating point from the labeled images of ``sources`` (minus the run's own training and
    validation images); writes ``out`` (an existing checkpoint only with ``force``) and returns
    the point."""
    target = _check_output(checkpoint, out, force)
    dev = resolve_device(device)
    state = load_checkpoint(checkpoint, map_location="cpu")
    model, trained = model_from_checkpoint(state, origin=str(checkpoint))
    model.to(dev)
    cfg = calibration_config(trained, data_root)
    split = load_split(checkpoint, cfg)
    # the run's test images too: a threshold fitted on them would be scored on them by evaluate
    found = source_records(cfg, split, sources, progress=progress, exclude_test=True)
    records = [r for r in found if r.has_label]
    if not records:
        raise ValueError(f"no labeled images in {', '.join(sources)}" + (f" under {data_root}" if data_root else ""))
    results = infer(
        model,
        records,
        image_size=cfg.data.image_size,
        intensity=cfg.data.intensity,
        batch_size=batch_size,
        device=dev,
        full_metrics=False,
        progress=progress,
    )
    if results.prob_pneumonia is None:
        raise ValueError(f"{checkpoint}: this model has no classifier, so it has no operating point")
    point = calibrate_threshold(
        results.prob_pneumonia, results.labels, method, sensitivity=sensitivity, fitted_on=", ".join(sources)
    )
    point = dataclasses.replace(point, image_ids=[image_identity(r) for r in records])
    write_with_operating_point(state, point, target)
    return point
