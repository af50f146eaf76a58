"""The record pools of a run: training pools per task, validation, in-domain test, cross-domain test."""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from multimix.config import Config, RealDataConfig
from multimix.data.pixels import set_max_megapixels
from multimix.data.records import Record
from multimix.data.splits import holdout
from multimix.data.synthetic import SITES, generate_records

logger = logging.getLogger(__name__)


@dataclass
class DataPools:
    """The records of a run by role. ``extra_unlabeled`` are the images of ``data.unlabeled_sources``
    (and of the classification sources with ``data.seg_unlabeled_from_cls``):
    they join both unlabeled streams, their labels unused (a cross-domain source's images may be
    among them: that is semi-supervised domain adaptation to that site)."""

    seg_pool: list[Record]
    cls_pool: list[Record]
    val: list[Record]
    test: list[Record]
    cross: list[Record]
    extra_unlabeled: list[Record] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # source, path, reason of every file left out

    def by_uid(self) -> dict[str, Record]:
        pools = (self.extra_unlabeled, self.seg_pool, self.cls_pool, self.val, self.test, self.cross)
        return {r.uid: r for pool in pools for r in pool}


def _derived_seed(seed: int, site: str, role: str) -> int:
    # stable across Python processes (unlike hash()), so every run sees the same images
    return (seed * 1_000_003 + zlib.crc32(f"{site}/{role}".encode())) % (2**31)


def _synthetic(cfg: Config, site: str, role: str, n: int, seed: int) -> list[Record]:
    return generate_records(
        n,
        site=site,
        image_size=cfg.data.image_size,
        seed=_derived_seed(seed, site, role),
        pneumonia_fraction=cfg.synthetic.pneumonia_fraction,
        uid_prefix=f"{site}-{role}",
    )


def _check_sites(cfg: Config) -> None:
    training = set(cfg.synthetic.seg_sites) | set(cfg.synthetic.cls_sites)
    for site in training | set(cfg.synthetic.cross_sites) | set(cfg.data.unlabeled_sources):
        if site not in SITES:
            raise ValueError(f"unknown synthetic site {site!r}; available: {sorted(SITES)}")
    overlap = training & set(cfg.synthetic.cross_sites)
    if overlap:
        raise ValueError(f"cross-domain sites must not be trained on, but {sorted(overlap)} are also training sites")


def synthetic_site_records(cfg: Config, site: str) -> list[Record]:
    """The held-out images of one synthetic site: its in-domain test set for a training site,
    else the cross-domain set it would have as a cross site (same images as in the pools)."""
    training = {*cfg.synthetic.seg_sites, *cfg.synthetic.cls_sites}
    _check_sites(replace(cfg, synthetic=replace(cfg.synthetic, cross_sites=[] if site in training else [site])))
    role = "test" if site in training else "cross"
    return _synthetic(cfg, site, role, cfg.synthetic.test_per_site, cfg.train.seed)


def build_synthetic_pools(cfg: Config, seed: int, *, training_pools: bool = True) -> DataPools:
    """Generate every pool from the synthetic sites named in ``cfg``.

    Segmentation training images come from ``seg_sites``, classification ones from
    ``cls_sites`` (as the paper pairs JSRT masks with CheX labels); validation and in-domain
    test images from every training site; cross-domain test images from ``cross_sites``.
    ``training_pools=False`` leaves the training pools empty (evaluation needs only the rest).
    """
    _check_sites(cfg)
    training_sites = list(dict.fromkeys([*cfg.synthetic.seg_sites, *cfg.synthetic.cls_sites]))
    seg_pool, cls_pool = [], []
    if training_pools:
        seg_pool = [
            r
            for s in cfg.synthetic.seg_sites
            for r in _synthetic(cfg, s, "seg", cfg.synthetic.seg_pool // len(cfg.synthetic.seg_sites), seed)
        ]
        cls_pool = [
            r
            for s in cfg.synthetic.cls_sites
            for r in _synthetic(cfg, s, "cls", cfg.synthetic.cls_pool // len(cfg.synthetic.cls_sites), seed)
        ]
    val = [r for s in training_sites for r in _synthetic(cfg, s, "val", cfg.synthetic.val_per_site, seed)]
    test = [r for s in training_sites for r in _synthetic(cfg, s, "test", cfg.synthetic.test_per_site, seed)]
    cross = [
        r for s in cfg.synthetic.cross_sites for r in _synthetic(cfg, s, "cross", cfg.synthetic.test_per_site, seed)
    ]
    pools = DataPools(seg_pool, cls_pool, val, test, cross)
    if training_pools:
        pools.extra_unlabeled = _synthetic_unlabeled(cfg, pools, seed)
    return pools


def unlabeled_source_names(cfg: Config, cls_sources: list[str]) -> list[str]:
    """The sources whose images join both unlabeled streams: the classification sources first when
    ``data.seg_unlabeled_from_cls`` is set, then ``data.unlabeled_sources`` (each named once)."""
    own = list(cls_sources) if cfg.data.seg_unlabeled_from_cls else []
    return list(dict.fromkeys([*own, *cfg.data.unlabeled_sources]))


def _synthetic_unlabeled(cfg: Config, pools: DataPools, seed: int) -> list[Record]:
    """A training site's own pool images, a cross site's test images, or new images of another site."""
    extra: list[Record] = []
    for site in unlabeled_source_names(cfg, cfg.synthetic.cls_sites):
        source = f"synthetic-{site}"
        seen = [r for r in (*pools.seg_pool, *pools.cls_pool, *pools.cross) if r.source == source]
        extra += seen or _synthetic(cfg, site, "unlabeled", cfg.synthetic.cls_pool, seed)
    return list({r.uid: r for r in extra}.values())


def assign_splits(
    records: list[Record], cfg: RealDataConfig, seed: int
) -> tuple[list[Record], list[Record], list[Record]]:
    """Train/val/test of one source: the publisher's split where it exists, else a seeded,
    stratified, patient-grouped split with ``cfg.real.val_fraction`` / ``cfg.real.test_fraction``.

    Where the official split falls short, the train part lends (patient-grouped, stratified):
    ``test_fraction`` of it when there is no test part at all (a copy of the training release
    alone), and the validation images missing to ``val_fraction`` of train + val when the
    validation part is absent or a token one (CheX ships 16 validation images for 5,232 training
    ones: too few to choose a checkpoint by).
    """
    train, val, test = holdout(records, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction, seed=seed)
    official = any(r.split is not None for r in records)
    if official and train and not test:
        train, _, test = holdout(_unsplit(train), val_fraction=0.0, test_fraction=cfg.test_fraction, seed=seed)
    wanted = round(cfg.val_fraction * (len(train) + len(val)))
    if train and len(val) < wanted:
        share = min((wanted - len(val)) / len(train), 1.0 - 1e-9)
        train, lent, _ = holdout(_unsplit(train), val_fraction=share, test_fraction=0.0, seed=seed)
        val = val + lent
    return train, val, test


def _unsplit(records: list[Record]) -> list[Record]:
    return [replace(r, split=None) for r in records]


def cached_source_records(
    spec: str, cfg: Config, *, progress: bool = True, skipped: list[dict[str, str]] | None = None
) -> list[Record]:
    """Every usable record of real source ``spec`` under ``cfg.real.root``, cached at ``cfg.data.image_size``;
    the files left out are printed (the first few per reason) and appended to ``skipped``."""
    from multimix.data.prepare import default_cache_dir, note_lines, prepare_source, skip_lines

    prepared = prepare_source(
        spec,
        cfg.real.root,
        cfg.data.image_size,
        cfg.real.cache_dir or default_cache_dir(),
        on_error=cfg.real.on_error,
        progress=progress,
    )
    summary = prepared.summary
    logger.info(f"{spec}: found {summary['images']}, used {summary['used']}, skipped {summary['skipped']}")
    for line in [*skip_lines(summary), *note_lines(summary)]:
        logger.info(f"{spec}: {line}")
    if skipped is not None:
        skipped.extend({"source": spec, **item} for item in summary["skipped_items"])
    return prepared.cached.records


def build_real_pools(cfg: Config, seed: int, *, progress: bool = True) -> DataPools:
    """Pools from the real datasets under ``cfg.real.root`` (cached at ``cfg.data.image_size``).

    Training sources (``seg_sources``, ``cls_sources``) are split into train/val/test
    (:func:`assign_splits`); the train parts are the pools the label budgets draw from.
    Cross-domain sources are used whole, for testing only: their masks for segmentation
    (``cross_seg_sources``) and their labels for classification (``cross_cls_sources``).
    """
    pools = DataPools([], [], [], [], [])

    def records_of(spec: str) -> list[Record]:
        return cached_source_records(spec, cfg, progress=progress, skipped=pools.skipped)

    usable: dict[str, list[Record]] = {}  # per source, the images that may serve as unlabeled ones
    # a source serving both tasks is scanned and split once, so its held-out parts never repeat
    for spec in dict.fromkeys([*cfg.real.seg_sources, *cfg.real.cls_sources]):
        train, val, test = assign_splits(records_of(spec), cfg.real, seed)
        usable[spec] = train
        if spec in cfg.real.seg_sources:
            pools.seg_pool.extend(train)
        if spec in cfg.real.cls_sources:
            pools.cls_pool.extend(train)
        pools.val.extend(val)
        pools.test.extend(test)
    training = set(cfg.real.seg_sources) | set(cfg.real.cls_sources)
    for spec, wanted in [(s, "mask") for s in cfg.real.cross_seg_sources] + [
        (s, "label") for s in cfg.real.cross_cls_sources
    ]:
        if spec in training:
            raise ValueError(f"cross-domain source {spec!r} is also a training source")
        if not carries_path(spec) and not (cfg.real.root and (Path(cfg.real.root) / spec).is_dir()):
            where = f"not under {cfg.real.root}" if cfg.real.root else "a dataset name, and there is no --data-root"
            logger.info(f"{spec}: {where}; no cross-domain test on it")
            continue
        records = usable[spec] = records_of(spec)
        pools.cross.extend(r for r in records if (r.has_mask if wanted == "mask" else r.has_label))
    pools.cross = list({r.uid: r for r in pools.cross}.values())
    for spec in unlabeled_source_names(cfg, cfg.real.cls_sources):
        pools.extra_unlabeled.extend(usable[spec] if spec in usable else records_of(spec))
    pools.extra_unlabeled = list({r.uid: r for r in pools.extra_unlabeled}.values())
    return pools


def carries_path(spec: str) -> bool:
    """A ``folder:PATH`` or ``csv:FILE`` source, found without a data root."""
    return spec.startswith(("folder:", "csv:"))


def build_pools(cfg: Config, *, training_pools: bool = True, progress: bool = True) -> DataPools:
    """The pools for ``cfg.data.source``: ``synthetic`` (built-in sites) or ``real`` (datasets under ``cfg.real.root``).

    ``training_pools=False`` may skip building the training pools (synthetic data); real
    sources are scanned whole either way, since their held-out parts come from the same split.
    """
    if cfg.data.source == "synthetic":
        return build_synthetic_pools(cfg, cfg.train.seed, training_pools=training_pools)
    if cfg.data.source == "real":
        named = [s for s in dict.fromkeys([*cfg.real.seg_sources, *cfg.real.cls_sources]) if not carries_path(s)]
        if not cfg.real.root and named:
            what = (
                f"source {named[0]} is a dataset name"
                if len(named) == 1
                else f"sources {', '.join(named)} are dataset names"
            )
            raise ValueError(
                f"the training {what}, found only under --data-root DIR (real.root) holding {'/, '.join(named)}/; "
                "or give every training source as folder:PATH or csv:FILE (--seg-sources and --cls-sources)"
            )
        set_max_megapixels(cfg.real.max_megapixels)
        return build_real_pools(cfg, cfg.train.seed, progress=progress)
    raise ValueError(f"unknown data source {cfg.data.source!r}; available: ['synthetic', 'real']")
