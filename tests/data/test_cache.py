import numpy as np
import pytest
from skimage import io as skio

from multimix.data import cache as cache_module
from multimix.data.cache import build_cache
from multimix.data.pixels import ImageReadError
from multimix.data.records import Record


def write_dataset(tmp_path, n=4, size=40):
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        image = (rng.random((size, size)) * 255).astype(np.uint8)
        mask = np.zeros((size // 2, size // 2), np.uint8)  # half resolution, same aspect (like SCR masks)
        mask[4:12, 2:8] = 255
        skio.imsave(tmp_path / f"img{i}.png", image, check_contrast=False)
        skio.imsave(tmp_path / f"mask{i}.png", mask, check_contrast=False)
        records.append(
            Record(
                uid=f"d/img{i}.png",
                source="d",
                image_path=str(tmp_path / f"img{i}.png"),
                mask_paths=(str(tmp_path / f"mask{i}.png"),),
                label=i % 2,
            )
        )
    return records


def test_build_then_reuse_without_decoding(tmp_path, monkeypatch):
    records = write_dataset(tmp_path)
    first = build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
    assert first.built and len(first.records) == 4
    image = np.asarray(first.records[0].image, dtype=np.float32)
    assert image.shape == (32, 32) and 0 <= image.min() and image.max() <= 1
    mask = first.records[0].mask
    assert (
        set(np.unique(mask)) == {0, 1}
        and mask[7:19, 4:12].mean() > 0.9
        and mask[:, 14:].sum() == 0
        and mask[21:].sum() == 0
    )
    assert first.records[1].label == 1
    assert first.records[0].meta["original_shape"] == (40, 40)  # for pixel spacing at the cached size

    def no_decoding(path):
        raise AssertionError(f"decoded {path} although the cache exists")

    monkeypatch.setattr(cache_module, "read_image_file", no_decoding)
    again = build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
    assert not again.built and again.folder == first.folder
    assert np.array_equal(np.asarray(again.records[3].image), np.asarray(first.records[3].image))
    assert again.records[2].meta["original_shape"] == (40, 40)


def test_changed_files_get_a_new_cache(tmp_path):
    records = write_dataset(tmp_path)
    first = build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
    skio.imsave(tmp_path / "img0.png", np.zeros((40, 40), np.uint8), check_contrast=False)
    second = build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
    assert second.built and second.folder != first.folder


def test_interrupted_build_leaves_no_cache_behind(tmp_path, monkeypatch):
    records = write_dataset(tmp_path)
    calls = []
    real = cache_module.resize_image

    def interrupted(pixels, size):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(pixels, size)

    monkeypatch.setattr(cache_module, "resize_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
    # only the (unlocked) lock file stays: no folder that could pass for a cache
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.suffix != ".lock"] == []
    monkeypatch.setattr(cache_module, "resize_image", real)
    assert build_cache(records, 32, tmp_path / "cache", name="d", progress=False).built


def test_bad_items_raise_or_are_skipped_by_name(tmp_path):
    records = write_dataset(tmp_path)
    (tmp_path / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    with pytest.raises(ImageReadError, match="img1.png: cannot decode"):
        build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
    result = build_cache(records, 32, tmp_path / "cache", name="d", on_error="skip", progress=False)
    assert [r.uid for r in result.records] == ["d/img0.png", "d/img2.png", "d/img3.png"]
    assert result.skipped[0]["uid"] == "d/img1.png" and "cannot decode" in result.skipped[0]["reason"]


def test_mask_aspect_mismatch_and_non_binary_masks_are_named(tmp_path):
    records = write_dataset(tmp_path, n=1)
    skio.imsave(tmp_path / "mask0.png", np.zeros((20, 30), np.uint8), check_contrast=False)
    with pytest.raises(ImageReadError, match=r"mask0.png: mask size 30x20 does not match the aspect of its image"):
        build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
    skio.imsave(tmp_path / "mask0.png", np.arange(400, dtype=np.uint8).reshape(20, 20), check_contrast=False)
    with pytest.raises(ImageReadError, match="mask0.png: mask is not binary"):
        build_cache(records, 32, tmp_path / "cache", name="d", progress=False)
