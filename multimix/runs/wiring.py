"""What every supervised run (MultiMix training, fine-tuning, distillation) sets up before its
model: seeds, the data pools (built once across processes), the split (``split.json``), the
record streams a method asks for and the step batches drawn from them."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multimix.config import Config
from multimix.data.keys import CLS_U, CLS_X, SEG_U, SEG_X
from multimix.data.pools import DataPools, build_pools
from multimix.data.prepare import write_skip_report
from multimix.data.splits import Split, build_split, with_extra_unlabeled
from multimix.data.streams import StepBatches
from multimix.engine.distributed import (
    DistributedContext,
    barrier,
)
from multimix.runs.folder import SKIP_REPORT, prepare_run_folder
from multimix.utils.seeding import seed_everything

logger = logging.getLogger(__name__)


def make_split(cfg: Config, pools: DataPools, split_path: Path, *, resume: bool) -> Split:
    """The run's split: its own ``split.json`` when resuming, ``data.split_file`` if given, else
    drawn from the pools; a loaded split must name only images the pools have."""
    if resume and split_path.exists():
        return check_split(Split.load(split_path), pools, split_path)
    extra = [r.uid for r in pools.extra_unlabeled]
    if cfg.data.split_file:
        return with_extra_unlabeled(check_split(Split.load(cfg.data.split_file), pools, cfg.data.split_file), extra)
    split = build_split(
        pools.seg_pool,
        pools.cls_pool,
        seg_budget=cfg.data.seg_labels,
        cls_budget=cfg.data.cls_labels,
        seed=cfg.train.seed,
        val=pools.val,
        test=pools.test,
        cross=pools.cross,
        exclude_labeled_from_unlabeled=cfg.data.exclude_labeled_from_unlabeled,
    )
    return with_extra_unlabeled(split, extra)


def check_split(split: Split, pools: DataPools, origin: str | Path) -> Split:
    """``split`` if every image it names is in ``pools``; else ``ValueError`` naming the file."""
    known = pools.by_uid()
    missing = [uid for uid in split.all_uids() if uid not in known]
    if missing:
        raise ValueError(
            f"{origin} names {len(missing)} images these data sources do not have (e.g. {', '.join(missing[:3])}); "
            "was it written for other data (real.root, sources, pool sizes, image set)?"
        )
    return split


def labeled_classes(run: RunStart) -> list[int]:
    """Class labels of the split's labeled classification images."""
    return [run.records[uid].label for uid in run.split.cls.labeled if run.records[uid].label is not None]


def class_prior(cfg: Config, labels: list[int]) -> list[float]:
    """The class prior the trained classifier's posteriors assume: uniform when the labeled
    batches are class-balanced or the loss class-weighted, else the labeled images' class shares.
    Stored in every checkpoint (``class_prior``) for label-free prior adaptation."""
    classes = cfg.model.num_classes
    if cfg.data.balanced_labeled or cfg.method.class_weights == "balanced" or not labels:
        return [1.0 / classes] * classes
    return [labels.count(c) / len(labels) for c in range(classes)]


def stream_records(split: Split, records: dict[str, Any], names: list[str]) -> dict[str, list]:
    """The records of each stream a method asks for (``names``: ``seg_x``, ``seg_u``, ``cls_x``,
    ``cls_u``), by the split's lists; a split naming images the data lacks is an error."""
    uids = {SEG_X: split.seg.labeled, SEG_U: split.seg.unlabeled, CLS_X: split.cls.labeled, CLS_U: split.cls.unlabeled}
    missing = [uid for name in names for uid in uids[name] if uid not in records]
    if missing:
        raise ValueError(
            f"the split names {len(missing)} images that the data source does not have, e.g. {missing[:3]}"
        )
    pools = {name: [records[uid] for uid in uids[name]] for name in names}
    for unlabeled, labeled in ((SEG_U, SEG_X), (CLS_U, CLS_X)):
        if unlabeled in pools and not pools[unlabeled] and pools.get(labeled):
            # a budget that labels the whole pool leaves nothing unlabeled; as in FixMatch, the
            # labeled images then serve the unsupervised term too rather than dropping it
            logger.info(
                f"note: no unlabeled images left for {unlabeled}; it reuses the {len(pools[labeled])} labeled ones"
            )
            pools[unlabeled] = list(pools[labeled])
    return pools


def build_pools_once(cfg: Config, context: DistributedContext, *, progress: bool = True) -> DataPools:
    """Rank 0 builds (and caches) the pools first, so ranks never race to write one cache."""
    if not context.is_main:
        barrier(context)
    pools = build_pools(cfg, progress=progress and context.is_main)
    if context.is_main:
        barrier(context)
    return pools


AUGMENTATIONS = ("standard", "acquisition")


CLASSIFICATION_DOMAIN, OTHER_DOMAIN = 0, 1


def training_domains(streams: dict[str, list]) -> dict[str, int]:
    """Source -> domain for domain-adversarial training: the sources of the labeled classification
    images are one domain, every other source (the segmentation hospitals, extra unlabeled ones)
    the other, so the class head cannot tell the hospital it learned from."""
    labeled = {r.source for r in streams.get(CLS_X, [])}
    sources = {r.source for pool in streams.values() for r in pool}
    return {s: CLASSIFICATION_DOMAIN if s in labeled else OTHER_DOMAIN for s in sorted(sources)}


def step_batches(
    cfg: Config, streams: dict[str, list], context: DistributedContext, start_step: int, strong_views: bool = True
) -> StepBatches:
    """The run's step-indexed batches of ``streams`` from ``start_step`` on (this rank's share):
    augmentation, balanced labeled batches and domain labels as ``cfg`` says."""
    if cfg.data.augment not in AUGMENTATIONS:
        raise ValueError(f"data.augment must be one of {AUGMENTATIONS}, got {cfg.data.augment!r}")
    return StepBatches(
        streams,
        image_size=cfg.data.image_size,
        batch_size=cfg.data.batch_size,
        seed=cfg.train.seed,
        total_steps=cfg.train.total_steps,
        start_step=start_step,
        strong_ops=cfg.data.strong_ops,
        hflip=cfg.data.hflip,
        strong_views=strong_views,
        intensity=cfg.data.intensity,
        acquisition=cfg.data.augment == "acquisition",
        seg_zoom_out=cfg.data.seg_zoom_out,
        domains=training_domains(streams) if cfg.method.domain_weight > 0 else None,
        balanced=(CLS_X,) if cfg.data.balanced_labeled else (),
        rank=context.rank,
        world_size=context.world_size,
    )


@dataclass
class RunStart:
    """What every supervised run (MultiMix, fine-tuning, distillation) sets up before its model."""

    out_dir: Path
    environment: dict[str, Any]
    pools: DataPools
    records: dict[str, Any]
    split: Split
    started: float


@dataclass
class RunFolder:
    """A run started: its folder (locked, checked, ``config.yaml`` written), seeds set, pools built."""

    out_dir: Path
    environment: dict[str, Any]
    pools: DataPools
    started: float


def start_run(cfg: Config, context: DistributedContext, *, resume: bool, progress: bool = True) -> RunFolder:
    """Run folder, seeds and data pools, shared by every kind of run (pretraining included); every
    file the data sources had to leave out is listed in ``skipped.csv``."""
    started = time.perf_counter()
    out_dir, environment = prepare_run_folder(cfg, context, resume=resume)
    seed_everything(cfg.train.seed)
    pools = build_pools_once(cfg, context, progress=progress)
    if pools.skipped and context.is_main:
        report = write_skip_report(pools.skipped, out_dir / SKIP_REPORT)
        logger.info(f"all {len(pools.skipped)} skipped files, with their reasons: {report}")
    return RunFolder(out_dir, environment, pools, started)


def open_run(cfg: Config, context: DistributedContext, *, resume: bool, progress: bool = True) -> RunStart:
    """:func:`start_run`, then the split (saved as ``split.json``)."""
    folder = start_run(cfg, context, resume=resume, progress=progress)
    records = folder.pools.by_uid()
    # deterministic: equal on every rank
    split = make_split(cfg, folder.pools, folder.out_dir / "split.json", resume=resume)
    if context.is_main:
        split.save(folder.out_dir / "split.json")
    return RunStart(folder.out_dir, folder.environment, folder.pools, records, split, folder.started)
