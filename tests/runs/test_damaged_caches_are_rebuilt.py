"""A damaged cache is named, moved aside and rebuilt; an intact one is reused.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fault_cases import png

from multimix.data.cache import build_cache
from multimix.data.records import Record

# --- 5. a corrupt cache is named, moved aside and rebuilt -----------------------------------------


def _cache(tmp_path: Path):
    paths = [png(tmp_path / f"{i}.png", value=40 * i) for i in range(3)]
    records = [Record(uid=f"d/{i}.png", source="d", image_path=str(path)) for i, path in enumerate(paths)]
    return records, build_cache(records, 16, tmp_path / "cache", name="d", progress=False)


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: (f / "images.npy").write_bytes((f / "images.npy").read_bytes()[:200]),
        lambda f: (f / "index.json").write_text("{garbage"),
        lambda f: (f / "index.json").write_text((f / "index.json").read_text().replace('"d/1.png"', '"d/9.png"')),
    ],
    ids=["truncated-images", "garbage-index", "edited-index"],
)
def test_a_damaged_cache_is_named_moved_aside_and_rebuilt(tmp_path, capsys, damage):
    records, first = _cache(tmp_path)
    expected = np.array([r.image for r in first.records])
    damage(first.folder)
    again = build_cache(records, 16, tmp_path / "cache", name="d", progress=False)
    assert again.built and again.folder == first.folder
    np.testing.assert_array_equal(np.array([r.image for r in again.records]), expected)
    assert f"the cache {first.folder} is damaged" in capsys.readouterr().err
    assert len(list((tmp_path / "cache").glob(f"{first.folder.name}.corrupt-*"))) == 1


def test_an_intact_cache_is_reused(tmp_path):
    records, first = _cache(tmp_path)
    assert first.built and not build_cache(records, 16, tmp_path / "cache", name="d", progress=False).built
