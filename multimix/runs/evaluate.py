"""Evaluate trained runs: rebuild each run's held-out sets, infer, summarise with confidence intervals.

In-domain images are the run's own ``split.json`` test items; cross-domain images are its
``cross`` items (sources it never trained on); explicit sources take every image of those
sources that the run neither trained nor validated on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from multimix.config import Config
from multimix.data.pools import build_pools
from multimix.data.records import Record, image_identity
from multimix.evaluation.inference import infer
from multimix.evaluation.results import (
    DOMAIN_NAMES,
    DomainResult,
    EvaluationSettings,
    ModelResult,
    pick_samples,
    saliency_examples,
)
from multimix.evaluation.summary import fitted_here_note, summarise_results
from multimix.metrics.operating_point import OperatingPoint
from multimix.models.factory import model_from_checkpoint, trained_model_name
from multimix.runs.flags import with_data_root
from multimix.runs.folder import run_folder
from multimix.runs.held_out import load_split, source_records
from multimix.utils.checkpoints import load_checkpoint
from multimix.utils.device import resolve_device

logger = logging.getLogger(__name__)


def _evaluation_config(cfg: Config, settings: EvaluationSettings) -> Config:
    cfg = with_data_root(cfg, settings.data_root)
    if settings.image_size:
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image_size=settings.image_size))
    return cfg


def _lookup(records: dict[str, Record], uids: Sequence[str], what: str, checkpoint: str | Path) -> list[Record]:
    missing = [u for u in uids if u not in records]
    if missing:
        raise ValueError(
            f"{checkpoint}: the run's {what} set names {len(missing)} images the data does not have "
            f"(e.g. {missing[:2]}); was it trained on other data? pass the same --data-root and --image-size"
        )
    return [records[u] for u in uids]


def evaluation_sets(checkpoint: str | Path, cfg: Config, settings: EvaluationSettings) -> dict[str, list[Record]]:
    """The record lists to evaluate, by domain name."""
    split = load_split(checkpoint, cfg)
    if settings.sources:
        return {"sources": source_records(cfg, split, settings.sources, progress=settings.progress)}
    records = build_pools(cfg, training_pools=False, progress=settings.progress).by_uid()
    wanted = ("in", "cross") if settings.domain == "all" else (settings.domain,)
    uid_lists = {"in": split.test, "cross": split.cross}
    return {DOMAIN_NAMES[d]: _lookup(records, uid_lists[d], DOMAIN_NAMES[d], checkpoint) for d in wanted}


def evaluate_checkpoint(
    checkpoint: str | Path, settings: EvaluationSettings, *, samples: dict[str, list[str]] | None = None
) -> ModelResult:
    """Evaluate one checkpoint on the sets ``settings`` asks for.

    ``samples`` maps a domain to the uids shown in the boundary figure; missing domains are
    picked here (and written back, so the next model shows the same images).
    """
    if settings.domain not in ("in", "cross", "all"):
        raise ValueError(f"domain must be 'in', 'cross' or 'all', got {settings.domain!r}")
    device = resolve_device(settings.device)
    state = load_checkpoint(checkpoint, map_location=device)
    model, trained_cfg = model_from_checkpoint(state, origin=str(checkpoint))
    model.to(device)
    cfg = _evaluation_config(trained_cfg, settings)
    size = cfg.data.image_size
    name = trained_model_name(model, cfg)
    point = checkpoint_operating_point(state, settings.threshold)
    result = ModelResult(
        label=name, model_name=name, checkpoint=str(checkpoint), config=cfg, operating_point=point.describe()
    )
    samples = {} if samples is None else samples
    for name, records in evaluation_sets(checkpoint, cfg, settings).items():
        if not records:
            logger.info(f"{checkpoint}: no {name} images; skipped")
            continue
        chosen = set(samples.setdefault(name, pick_samples(records, settings.num_samples)))
        keep = [i for i, r in enumerate(records) if r.uid in chosen]
        clean = cfg.inference.clean_masks if settings.clean_masks is None else settings.clean_masks
        results = infer(
            model,
            records,
            image_size=size,
            intensity=cfg.data.intensity,
            postprocess=clean,
            drop_edge_regions=cfg.inference.drop_edge_regions,
            flip_tta=cfg.inference.flip_tta,
            seg_threshold=cfg.inference.seg_threshold,
            batch_size=settings.batch_size,
            device=device,
            keep=keep,
            progress=settings.progress,
        )
        summary = summarise_results(results, threshold=point.threshold, boot=settings.boot)
        _note_fitted_images(summary, records, point)
        examples = saliency_examples(
            model,
            records,
            results,
            settings.num_samples,
            image_size=size,
            intensity=cfg.data.intensity,
            device=device,
            threshold=point.threshold,
        )
        result.domains[name] = DomainResult(name, records, results, summary, examples)
    return result


def _note_fitted_images(summary: dict[str, Any], records: Sequence[Record], point: OperatingPoint) -> None:
    """Record in the classification summary how many of ``records`` chose the operating point."""
    if "classification" not in summary or not point.image_ids:
        return
    chosen_on = set(point.image_ids)
    fitted = sum(image_identity(r) in chosen_on for r in records if r.has_label)
    if fitted:
        summary["classification"]["operating_point_fitted_images"] = fitted
        logger.warning(
            "warning: " + fitted_here_note(fitted, summary["classification"]["num_images"]) + f" ({point.describe()})"
        )


def checkpoint_operating_point(state: dict[str, Any], threshold: float | None = None) -> OperatingPoint:
    """``threshold`` when given (``--threshold``), else the loaded checkpoint's own operating point."""
    if threshold is not None:
        return OperatingPoint(threshold, "manual", "the command line")
    return OperatingPoint.from_checkpoint(state)


def evaluate_checkpoints(
    checkpoints: Sequence[str | Path], settings: EvaluationSettings, *, progress: bool = False
) -> list[ModelResult]:
    """Evaluate several checkpoints side by side; row labels are made unique with the run folder.

    ``progress`` adds a bar over the checkpoints (``settings.progress`` is the per-batch one).
    """
    samples: dict[str, list[str]] = {}
    paths = tqdm(checkpoints, desc="evaluate runs", unit="run", disable=not progress)
    results = [evaluate_checkpoint(path, settings, samples=samples) for path in paths]
    counts: dict[str, int] = {}
    for r in results:
        counts[r.label] = counts.get(r.label, 0) + 1
    for r in results:
        if counts[r.label] > 1:
            r.label = f"{r.label} ({run_folder(r.checkpoint).name})"
    return results
