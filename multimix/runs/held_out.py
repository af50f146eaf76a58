"""What a trained run has not seen: its split (``split.json``, rebuilt from the config when it is
missing) and the images of any source it neither trained nor validated on."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from multimix.config import Config
from multimix.data.pools import build_pools, cached_source_records, carries_path, synthetic_site_records
from multimix.data.records import Record, file_key
from multimix.data.splits import Split
from multimix.runs.folder import run_folder
from multimix.runs.wiring import make_split

logger = logging.getLogger(__name__)


def load_split(checkpoint: str | Path, cfg: Config) -> Split:
    """The run's ``split.json``; rebuilt from the config (deterministic) when it is missing."""
    path = run_folder(checkpoint) / "split.json"
    if path.exists():
        return Split.load(path)
    logger.warning(f"warning: {path} not found; rebuilding the split from the checkpoint's config and seed")
    return make_split(cfg, build_pools(cfg), path, resume=False)


def source_records(
    cfg: Config, split: Split, sources: Sequence[str], *, progress: bool = True, exclude_test: bool = False
) -> list[Record]:
    """Every image of ``sources`` that the run neither trained nor validated on (nor tested on,
    with ``exclude_test``), each once. An image is its file: the run's images are recognised
    under any spelling of their path or any name of the table that lists them."""
    used = [*split.seg.labeled, *split.seg.unlabeled, *split.cls.labeled, *split.cls.unlabeled, *split.val]
    if exclude_test:
        used += split.test
    seen = set(used)
    seen_files = _run_files(cfg, seen, progress) if cfg.data.source == "real" else set()
    records: dict[str, Record] = {}
    for source in sources:
        if cfg.data.source == "synthetic" and not carries_path(source):  # a folder or table is on disk
            found = synthetic_site_records(cfg, source)
        else:
            found = cached_source_records(source, cfg, progress=progress)
        for record in found:
            key = file_key(record.image_path) if record.image_path else record.uid
            if record.uid not in seen and key not in seen_files:
                records.setdefault(key, record)
    return list(records.values())


def _run_files(cfg: Config, uids: set[str], progress: bool) -> set[str]:
    """The files of the run's images named by ``uids`` (its training sources, scanned again)."""
    by_uid = build_pools(cfg, training_pools=False, progress=progress).by_uid()
    paths = (by_uid[u].image_path for u in uids if u in by_uid)
    return {file_key(path) for path in paths if path}
