"""Report figures: each writes one readable, non-blank PNG, atomically, and rejects bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from scipy import ndimage

from multimix.evaluation import figures
from multimix.evaluation.figures import (
    boundary_overlays,
    dice_boxplot,
    embed_2d,
    embedding_map,
    roc_curves,
    saliency_overlays,
)

SIZE = 48


def assert_png(path: Path, returned: Path) -> None:
    """``path`` is a real, non-blank PNG and the only file in its folder (no temp file left)."""
    assert returned == path
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(path)
    assert pixels.shape[0] >= 200 and pixels.shape[1] >= 200
    rgb = np.round(pixels[..., :3] * 255).astype(np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    assert len(np.unique(packed)) > 20, "the figure is (nearly) a single colour"


def ellipses(k: int, shift: int = 0, grow: float = 1.0) -> np.ndarray:
    """``(k, SIZE, SIZE)`` masks: one ellipse per image, its size varying with the index."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    masks = []
    for i in range(k):
        ry, rx = (12 + i) * grow, (8 + i % 3) * grow
        masks.append(((yy - SIZE / 2) / ry) ** 2 + ((xx - SIZE / 2 - shift) / rx) ** 2 <= 1)
    return np.stack(masks)


def images_for(masks: np.ndarray) -> np.ndarray:
    """Grey "X-rays": a smooth gradient, darker inside the masks, plus mild noise, in [0, 1]."""
    rng = np.random.default_rng(0)
    base = np.linspace(0.4, 0.9, SIZE)[None, :, None] * np.ones((len(masks), 1, SIZE))
    return np.clip(base - 0.3 * masks + rng.normal(0, 0.03, masks.shape), 0, 1)


def smooth_saliency(k: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    maps = ndimage.gaussian_filter(rng.random((k, SIZE, SIZE)), sigma=(0, 5, 5))
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    return (maps - lo) / (hi - lo)


# ------------------------------------------------------------------------ dice_boxplot


def test_dice_boxplot_writes_png_and_skips_empty_groups(tmp_path):
    rng = np.random.default_rng(0)
    scores = {
        "supervised": {"in-domain": rng.beta(20, 3, 30), "cross-domain": rng.beta(8, 4, 20)},
        # NaN (image without a reference mask) is dropped; this model has no cross-domain set
        "MultiMix": {"in-domain": np.r_[rng.beta(30, 3, 30), np.nan]},
        "empty": {"in-domain": np.array([]), "cross-domain": np.array([np.nan])},
        "bridge": {"unused-domain": np.array([]), "cross-domain": rng.beta(15, 3, 20)},
    }
    path = tmp_path / "nested" / "dice.png"  # parent folders are created
    assert_png(path, dice_boxplot(scores, path))


def test_dice_boxplot_non_unit_metric(tmp_path):
    path = tmp_path / "hd.png"
    scores = {"a": {"test": np.random.default_rng(0).normal(5, 2, 30)}}
    assert_png(path, dice_boxplot(scores, path, metric_name="HD95 (px)"))


def test_dice_boxplot_without_any_value_raises(tmp_path):
    with pytest.raises(ValueError, match="no finite score"):
        dice_boxplot({"a": {"x": np.array([np.nan])}, "b": {}}, tmp_path / "d.png")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ boundary_overlays


def test_boundary_overlays_writes_png(tmp_path):
    refs = ellipses(3)
    refs[2] = False  # an image without a reference mask still shows the predictions
    predictions = {
        "supervised": np.stack([ndimage.binary_erosion(m, iterations=2) for m in ellipses(3)]),
        "MultiMix": ellipses(3, shift=2),
        "bridge": ellipses(3, grow=1.1),
    }
    path = tmp_path / "boundaries.png"
    out = boundary_overlays(images_for(refs), refs, predictions, path, row_titles=["a", "b", "c"])
    assert_png(path, out)


def test_boundary_overlays_dice_matches_rule():
    a, b = ellipses(1)[0], ellipses(1, shift=3)[0]
    expected = 2 * np.sum(a & b) / (a.sum() + b.sum())
    assert figures.boundaries._dice(a, b) == pytest.approx(expected)
    assert figures.boundaries._dice(np.zeros_like(a), np.zeros_like(a)) == 1.0


@pytest.mark.parametrize(
    "change",
    [
        {"references": ellipses(2)},  # 2 references for 3 images
        {"predictions": {"m": ellipses(3)[:, :, :-1]}},  # wrong image size
        {"predictions": {}},
        {"row_titles": ["only one"]},
        {"images": np.zeros((3, SIZE))},  # not (K, H, W)
    ],
)
def test_boundary_overlays_rejects_bad_input(tmp_path, change):
    args = {
        "images": images_for(ellipses(3)),
        "references": ellipses(3),
        "predictions": {"m": ellipses(3)},
        "row_titles": None,
    }
    args.update(change)
    with pytest.raises(ValueError):
        boundary_overlays(
            args["images"],
            args["references"],
            args["predictions"],
            tmp_path / "b.png",
            row_titles=args["row_titles"],
        )
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ saliency_overlays


def test_saliency_overlays_mixed_rows(tmp_path):
    labels = np.array([0, 1, 1, 0, 1])
    predictions = np.array([0, 1, 0, 0, 0])
    path = tmp_path / "saliency.png"
    out = saliency_overlays(
        images_for(ellipses(5)),
        smooth_saliency(5),
        labels,
        predictions,
        np.array([0.9, 0.8, 0.6, 0.7, 0.55]),
        path,
        title="MultiMix, in-domain",
    )
    assert_png(path, out)


@pytest.mark.parametrize("correct", [True, False])
def test_saliency_overlays_with_an_empty_row(tmp_path, correct):
    labels = np.array([0, 1, 1])
    predictions = labels if correct else 1 - labels
    path = tmp_path / "saliency.png"
    out = saliency_overlays(images_for(ellipses(3)), smooth_saliency(3), labels, predictions, np.full(3, 0.8), path)
    assert_png(path, out)


@pytest.mark.parametrize(
    "labels, predictions, probabilities, saliency",
    [
        ([0, 1], [0, 1, 1], [0.9] * 3, None),  # too few labels
        ([0, 1, 1], [0, 1], [0.9] * 3, None),  # too few predictions
        ([0, 1, 1], [0, 1, 1], [0.9] * 2, None),  # too few probabilities
        ([0, 1, 2], [0, 1, 1], [0.9] * 3, None),  # class 2 has no name
        ([0, 1, 1], [0, 1, 1], [0.9] * 3, np.zeros((3, SIZE, SIZE + 1))),  # shape mismatch
    ],
)
def test_saliency_overlays_rejects_bad_input(tmp_path, labels, predictions, probabilities, saliency):
    saliency = smooth_saliency(3) if saliency is None else saliency
    with pytest.raises(ValueError):
        saliency_overlays(
            images_for(ellipses(3)),
            saliency,
            np.array(labels),
            np.array(predictions),
            np.array(probabilities),
            tmp_path / "s.png",
        )


# ------------------------------------------------------------------------ roc_curves


def _roc(separation: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, 100)
    scores = rng.normal(labels * separation, 1.0)
    order = np.argsort(-scores)
    tp = np.r_[0, np.cumsum(labels[order])]
    fp = np.r_[0, np.cumsum(1 - labels[order])]
    return fp / fp[-1], tp / tp[-1]


def test_roc_curves_writes_png(tmp_path):
    curves = {
        "supervised": {"in-domain": _roc(1.0, 0), "cross-domain": _roc(0.5, 1)},
        "MultiMix": {"in-domain": _roc(2.0, 2)},  # missing in one domain
    }
    path = tmp_path / "roc.png"
    assert_png(path, roc_curves(curves, path))


@pytest.mark.parametrize(
    "curve",
    [
        (np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0])),  # length mismatch
        (np.array([0.0, 0.6, 0.4, 1.0]), np.array([0.0, 0.5, 0.7, 1.0])),  # fpr not sorted
        (np.array([0.0, 1.0]), np.array([0.0, 1.5])),  # rate outside [0, 1]
    ],
)
def test_roc_curves_rejects_malformed_curves(tmp_path, curve):
    with pytest.raises(ValueError, match="curves\\['m'\\]\\['d'\\]"):
        roc_curves({"m": {"d": curve}}, tmp_path / "roc.png")
    with pytest.raises(ValueError, match="no curves"):
        roc_curves({"m": {}}, tmp_path / "roc.png")


# ------------------------------------------------------------------------ embeddings


def _embeddings(n_per_source: int = 20) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Three sources, each shifted in feature space, two classes, some unlabeled."""
    rng = np.random.default_rng(0)
    blocks, labels, sources = [], [], []
    for site, shift in (("chex", 0.0), ("nih", 3.0), ("montgomery", -2.0)):
        y = rng.integers(0, 2, n_per_source)
        x = rng.normal(0, 1, (n_per_source, 32))
        x[:, :8] += shift
        x[:, 8:16] += 1.5 * y[:, None]
        if site == "chex":
            y[:5] = -1
        blocks.append(x)
        labels.append(y)
        sources += [site] * n_per_source
    return np.concatenate(blocks), np.concatenate(labels), sources


def test_embed_2d_tsne_is_deterministic():
    x, _, _ = _embeddings()
    first = embed_2d(x, "tsne", seed=3)
    assert first.shape == (60, 2) and np.all(np.isfinite(first))
    np.testing.assert_allclose(embed_2d(x, "tsne", seed=3), first, rtol=0, atol=1e-10)


def test_embed_2d_pca_and_small_inputs():
    x, _, _ = _embeddings()
    assert embed_2d(x, "pca").shape == (60, 2)
    assert embed_2d(x[:5], "tsne").shape == (5, 2)  # perplexity (5 - 1) / 3
    constant = np.hstack([x[:10], np.ones((10, 1))])  # a zero-variance feature is harmless
    assert np.all(np.isfinite(embed_2d(constant, "pca")))


@pytest.mark.parametrize(
    "x, method, message",
    [
        (np.zeros((4, 8)), "tsne", "at least 5"),
        (np.zeros(8), "tsne", "2 dimensions"),
        (np.full((6, 3), np.nan), "tsne", "NaN"),
        (np.zeros((6, 3)), "umap", "method"),
    ],
)
def test_embed_2d_rejects_bad_input(x, method, message):
    with pytest.raises(ValueError, match=message):
        embed_2d(x, method)


def test_embedding_map_writes_png(tmp_path):
    x, labels, sources = _embeddings()
    path = tmp_path / "tsne.png"
    assert_png(path, embedding_map(x, labels, sources, path, seed=1, title="encoder features"))


def test_embedding_map_pca(tmp_path):
    x, labels, sources = _embeddings()
    path = tmp_path / "pca.png"
    assert_png(path, embedding_map(x, labels, sources, path, method="pca"))


def test_embedding_map_rejects_bad_input(tmp_path):
    x, labels, sources = _embeddings()
    with pytest.raises(ValueError, match="labels"):
        embedding_map(x, labels[:-1], sources, tmp_path / "e.png")
    with pytest.raises(ValueError, match="sources"):
        embedding_map(x, labels, sources[:-1], tmp_path / "e.png")
    with pytest.raises(ValueError, match="at least 5"):
        embedding_map(x[:4], labels[:4], sources[:4], tmp_path / "e.png")
    bad = labels.copy()
    bad[0] = 2
    with pytest.raises(ValueError, match="unlabeled"):
        embedding_map(x, bad, sources, tmp_path / "e.png")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------ atomic writes


def test_failed_render_leaves_previous_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "roc.png"
    path.write_bytes(b"previous")

    def broken_savefig(self, handle, **kwargs):
        handle.write(b"half a png")
        raise RuntimeError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="disk full"):
        roc_curves({"m": {"d": _roc(1.0, 0)}}, path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["roc.png"]


def test_a_row_title_is_the_file_name_short_enough_for_its_panel(tmp_path):
    from multimix.evaluation.figures.boundaries import row_label

    assert row_label("csv:labels/images/a.png") == "a.png"
    long = "folder:site/" + "x" * 40 + "_0001.png"
    assert len(row_label(long)) == 24 and row_label(long).endswith("_0001.png") and "…" in row_label(long)
    refs = ellipses(2)
    path = tmp_path / "boundaries.png"
    boundary_overlays(images_for(refs), refs, {"MultiMix": refs}, path, row_titles=[long, "chex/test/IM-0001.jpeg"])
    assert_png(path, path)
