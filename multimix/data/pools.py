"""The record pools of a run: training pools per task, validation, in-domain test, cross-domain test."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ..config import DataConfig
from .records import Record
from .sources.synthetic import SITES, generate_records


@dataclass
class DataPools:
    seg_pool: list[Record]
    cls_pool: list[Record]
    val: list[Record]
    test: list[Record]
    cross: list[Record]

    def by_uid(self) -> dict[str, Record]:
        pools = (self.seg_pool, self.cls_pool, self.val, self.test, self.cross)
        return {r.uid: r for pool in pools for r in pool}


def _derived_seed(seed: int, site: str, role: str) -> int:
    # stable across Python processes (unlike hash()), so every run sees the same images
    return (seed * 1_000_003 + zlib.crc32(f"{site}/{role}".encode())) % (2**31)


def _synthetic(cfg: DataConfig, site: str, role: str, n: int, seed: int) -> list[Record]:
    return generate_records(
        n,
        site=site,
        image_size=cfg.image_size,
        seed=_derived_seed(seed, site, role),
        pneumonia_fraction=cfg.pneumonia_fraction,
        uid_prefix=f"{site}-{role}",
    )


def _check_sites(cfg: DataConfig) -> None:
    training = set(cfg.seg_sites) | set(cfg.cls_sites)
    for site in training | set(cfg.cross_sites):
        if site not in SITES:
            raise ValueError(f"unknown synthetic site {site!r}; available: {sorted(SITES)}")
    overlap = training & set(cfg.cross_sites)
    if overlap:
        raise ValueError(f"cross-domain sites must not be trained on, but {sorted(overlap)} are also training sites")


def build_synthetic_pools(cfg: DataConfig, seed: int) -> DataPools:
    """Generate every pool from the synthetic sites named in ``cfg``.

    Segmentation training images come from ``seg_sites``, classification ones from
    ``cls_sites`` (as the paper pairs JSRT masks with CheX labels); validation and in-domain
    test images from every training site; cross-domain test images from ``cross_sites``.
    """
    _check_sites(cfg)
    training_sites = list(dict.fromkeys([*cfg.seg_sites, *cfg.cls_sites]))
    seg_pool = [r for s in cfg.seg_sites for r in _synthetic(cfg, s, "seg", cfg.seg_pool // len(cfg.seg_sites), seed)]
    cls_pool = [r for s in cfg.cls_sites for r in _synthetic(cfg, s, "cls", cfg.cls_pool // len(cfg.cls_sites), seed)]
    val = [r for s in training_sites for r in _synthetic(cfg, s, "val", cfg.val_per_site, seed)]
    test = [r for s in training_sites for r in _synthetic(cfg, s, "test", cfg.test_per_site, seed)]
    cross = [r for s in cfg.cross_sites for r in _synthetic(cfg, s, "cross", cfg.test_per_site, seed)]
    return DataPools(seg_pool, cls_pool, val, test, cross)


def build_pools(cfg: DataConfig, seed: int) -> DataPools:
    """The pools for ``cfg.source`` (only ``synthetic`` until the real-data sources land)."""
    if cfg.source == "synthetic":
        return build_synthetic_pools(cfg, seed)
    raise ValueError(f"unknown data source {cfg.source!r}; available: ['synthetic']")
