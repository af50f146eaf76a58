"""The wiring every supervised run shares (MultiMix training, fine-tuning, distillation).

The run folder and its lock, resumability checks, the split, the
streams, the trainer and the final evaluation of ``best.pt`` (see :mod:`multimix.runs.train`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from multimix.config import Config, save_config
from multimix.data.keys import CLS_U, CLS_X, SEG_U, SEG_X
from multimix.data.pools import DataPools, build_pools
from multimix.data.prepare import write_skip_report
from multimix.data.splits import Split, build_split, with_extra_unlabeled
from multimix.data.streams import StepBatches, step_loader
from multimix.engine.distributed import (
    DistributedContext,
    all_gather,
    barrier,
    parameter_digest,
    rank_device,
)
from multimix.engine.trainer import Trainer
from multimix.evaluation.evaluate import evaluate_records, selection_score
from multimix.methods import Method
from multimix.models.factory import NETWORK_KEY, describe_network
from multimix.utils.atomic import atomic_write_text
from multimix.utils.checkpoints import CheckpointError, load_checkpoint
from multimix.utils.device import resolve_device
from multimix.utils.environment import environment_info
from multimix.utils.locks import exclusive_lock
from multimix.utils.seeding import seed_everything

logger = logging.getLogger(__name__)

T = TypeVar("T")

SUMMARY_KEYS = ("accuracy", "f1_normal", "f1_pneumonia", "dice")


def default_run_name(cfg: Config) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return f"{cfg.model.name}-seg{cfg.data.seg_labels}-cls{cfg.data.cls_labels}-{stamp}"


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


def stream_pools(split: Split, records: dict[str, Any], names: list[str]) -> dict[str, list]:
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


def format_table(summary: dict[str, Any]) -> str:
    """The final results as a small fixed-width table."""
    header = f"{'':<14}" + "".join(f"{k:>14}" for k in SUMMARY_KEYS)
    rows = [header]
    for domain in ("in_domain", "cross_domain"):
        values = summary.get(domain, {})
        cells = "".join(f"{values[k]:>14.4f}" if k in values else f"{'-':>14}" for k in SUMMARY_KEYS)
        rows.append(f"{domain:<14}{cells}")
    return "\n".join(rows)


def resolve_run_folder(cfg: Config) -> Path:
    """``train.out``, or ``runs/<name>`` when unset; fixed in the config on first use, so the
    timestamped default name is chosen once per run."""
    cfg.train.out = str(Path(cfg.train.out or Path("runs") / (cfg.train.name or default_run_name(cfg))))
    return Path(cfg.train.out)


RUN_LOCK = ".lock"
SKIP_REPORT = "skipped.csv"


def holding_run_folder(cfg: Config, context: DistributedContext, body: Callable[[], T]) -> T:
    """Run ``body`` while this process (rank 0) holds the run folder's lock, so a second
    training into the same ``--out`` refuses instead of interleaving files with this one."""
    out_dir = resolve_run_folder(cfg)
    if not context.is_main:
        return body()
    created = not out_dir.exists()
    try:
        with exclusive_lock(out_dir / RUN_LOCK, what=f"run folder {out_dir}"):
            return body()
    except BaseException:
        if (
            created and out_dir.is_dir() and [p.name for p in out_dir.iterdir()] == [RUN_LOCK]
        ):  # refused before writing: leave no trace
            (out_dir / RUN_LOCK).unlink()
            out_dir.rmdir()
        raise


# settings a resumed run may change: how long it trains and where/how it runs, nothing that
# changes the data, the model or the method its checkpoint was trained with
RESUMABLE_CHANGES = frozenset(
    {
        "train.steps",
        "train.epochs",
        "train.device",
        "train.out",
        "train.name",
        "train.log_every",
        "train.eval_batch_size",
        "data.num_workers",
        "real.root",
        "real.cache_dir",
    }
)


def check_resumable(cfg: Config, last: Path) -> int:
    """Check that ``cfg`` can continue the checkpoint ``last``; returns its step.

    Raises:
        CheckpointError: ``last`` is truncated or not a run checkpoint.
        ValueError: a setting differs from the one the checkpoint was trained with (named).
    """
    state = load_checkpoint(last)
    stored = state.get("run", {}).get("config")
    if stored is None:
        raise ValueError(f"{last}: checkpoint carries no run config; it cannot be resumed")
    before = _flatten(Config.from_dict(stored, origin=str(last)).to_dict())
    now = _flatten(cfg.to_dict())
    conflicts = [k for k in now if k not in RESUMABLE_CHANGES and now[k] != before.get(k)]
    if conflicts:
        changes = "; ".join(f"{k} was {before.get(k)!r}, now {now[k]!r}" for k in conflicts[:4])
        raise ValueError(
            f"cannot resume {last.parent.parent}: {changes}. Resume without changing "
            "them, or start a new run with another --out (nothing was written)"
        )
    return int(state.get("step", 0))


def _flatten(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{section}.{key}": value for section, values in sections.items() for key, value in values.items()}


def prepare_run_folder(cfg: Config, context: DistributedContext, *, resume: bool) -> tuple[Path, dict[str, Any]]:
    """Create (or check, when resuming) the run folder; ``config.yaml`` is written only once the
    command is known to fit the run, so a refused ``--resume`` leaves the run as it was."""
    resolve_device(cfg.train.device)  # a missing GPU fails here, before any data is read
    out_dir = resolve_run_folder(cfg)
    last = out_dir / "checkpoints" / "last.pt"
    if not resume and last.exists():
        raise FileExistsError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    if resume and context.is_main:
        if last.exists():
            try:
                step = check_resumable(cfg, last)
            except CheckpointError as err:
                raise CheckpointError(
                    f"{err}; this run cannot continue from it (its best.pt may still be usable)"
                ) from err
            logger.info(f"resuming {out_dir} from step {step} of {cfg.train.total_steps}")
        else:
            logger.info(f"note: --resume: {out_dir} has no checkpoint yet; starting a new run there")
    environment = environment_info()
    if context.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / "config.yaml")
        atomic_write_text(out_dir / "environment.json", json.dumps(environment, indent=2))
    return out_dir, environment


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


def _step_batches(
    cfg: Config, streams: dict[str, list], context: DistributedContext, start_step: int, strong_views: bool = True
) -> StepBatches:
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
        domains=training_domains(streams) if cfg.method.domain_weight > 0 else None,
        balanced=(CLS_X,) if cfg.data.balanced_labeled else (),
        rank=context.rank,
        world_size=context.world_size,
    )


def check_replicas(context: DistributedContext, model: torch.nn.Module, batches: StepBatches) -> dict[str, Any]:
    """After training: are the weights bit-identical on every rank, and did the ranks draw
    disjoint images (first step of every stream)? Recorded in ``summary.json``."""
    first_step = {
        name: sorted(batches.streams[name][i].uid for i in batches.indices(name, 0)) for name in batches.streams
    }
    digests = all_gather(context, parameter_digest(model))
    draws = all_gather(context, first_step)
    disjoint = all(not set(a[name]) & set(b[name]) for i, a in enumerate(draws) for b in draws[i + 1 :] for name in a)
    return {
        "world_size": context.world_size,
        "backend": context.backend,
        "parameters_identical": len(set(digests)) == 1,
        "ranks_drew_disjoint_images": disjoint,
    }


@dataclass
class RunStart:
    """What every supervised run (MultiMix, fine-tuning, distillation) sets up before its model."""

    out_dir: Path
    environment: dict[str, Any]
    pools: DataPools
    records: dict[str, Any]
    split: Split
    started: float


def open_run(cfg: Config, context: DistributedContext, *, resume: bool, progress: bool = True) -> RunStart:
    """Run folder, seeds, data pools and the split (saved as ``split.json``); every file the
    data sources had to leave out is listed in ``skipped.csv``."""
    started = time.perf_counter()
    out_dir, environment = prepare_run_folder(cfg, context, resume=resume)
    seed_everything(cfg.train.seed)
    pools = build_pools_once(cfg, context, progress=progress)
    if pools.skipped and context.is_main:
        report = write_skip_report(pools.skipped, out_dir / SKIP_REPORT)
        logger.info(f"all {len(pools.skipped)} skipped files, with their reasons: {report}")
    records = pools.by_uid()
    split = make_split(cfg, pools, out_dir / "split.json", resume=resume)  # deterministic: equal on every rank
    if context.is_main:
        split.save(out_dir / "split.json")
    return RunStart(out_dir, environment, pools, records, split, started)


def fit_and_evaluate(
    cfg: Config,
    context: DistributedContext,
    run: RunStart,
    model: torch.nn.Module,
    method: Method,
    streams: dict[str, list],
    *,
    resume: bool,
    progress: bool,
    run_info: dict[str, Any] | None = None,
    strong_views: bool = True,
) -> dict[str, Any] | None:
    """Train ``model`` with ``method`` on ``streams`` (validation picks ``best.pt``), then evaluate
    ``best.pt`` on the split's test and cross-domain images; writes and returns ``summary.json``'s
    content on rank 0 (``None`` on other ranks). ``run_info`` adds to what every checkpoint stores."""
    split, records = run.split, run.records
    if context.is_main:
        logger.info(
            f"run folder: {run.out_dir}"
            + (f" ({context.world_size} processes, {context.backend})" if context.enabled else "")
        )
        logger.info("streams: " + ", ".join(f"{name} {len(pool)}" for name, pool in streams.items()))
        logger.info(f"held out: val {len(split.val)}, test {len(split.test)}, cross-domain {len(split.cross)}")
    device = rank_device(context, resolve_device(cfg.train.device))
    eval_kw = dict(
        image_size=cfg.data.image_size,
        intensity=cfg.data.intensity,
        batch_size=cfg.train.eval_batch_size,
        device=device,
    )
    val_records = [records[uid] for uid in split.val]

    def batches(start_step: int):
        dataset = _step_batches(cfg, streams, context, start_step, strong_views)
        return step_loader(dataset, num_workers=cfg.data.num_workers, pin_memory=device.type == "cuda")

    def evaluate(eval_model):
        metrics = evaluate_records(eval_model, val_records, **eval_kw)
        metrics["score"] = selection_score(metrics, cfg.train.select_by)
        return metrics

    info = {"config": cfg.to_dict(), "environment": run.environment, **(run_info or {})}
    network = describe_network(model, info.get("architecture"))
    if network is not None:  # the checkpoint rebuilds its network from this alone
        info[NETWORK_KEY] = network
    optimizer, scheduler = method.configure_optimizer(model, cfg.train)
    trainer = Trainer(
        model,
        method,
        batches,
        cfg.train,
        run.out_dir,
        optimizer=optimizer,
        scheduler=scheduler,
        evaluate=evaluate,
        run_info=info,
        context=context,
    )
    result = trainer.fit(resume=resume, progress=progress)
    replicas = (
        check_replicas(context, trainer.model, _step_batches(cfg, streams, context, 0)) if context.enabled else None
    )
    if not context.is_main:
        return None

    best = load_checkpoint(run.out_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    summary = {
        "in_domain": evaluate_records(model, [records[u] for u in split.test], **eval_kw),
        "cross_domain": evaluate_records(model, [records[u] for u in split.cross], **eval_kw),
        "best_step": result.best_step,
        "steps": result.steps,
        "wall_seconds": round(time.perf_counter() - run.started, 2),
        "train_images_per_second": round(result.images_per_second, 2),
        "precision": trainer.precision_name,
    }
    if replicas is not None:
        summary["distributed"] = replicas
    return summary


def write_summary(out_dir: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` (atomic) and the results table on the console."""
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2))
    logger.info(format_table(summary))
    logger.info(
        f"wall time {summary['wall_seconds']:.1f} s, "
        f"training throughput {summary['train_images_per_second']:.1f} images/s"
    )
