"""Tests of the procedural chest X-ray source (small images and batches: the file runs fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage
from skimage.measure import label as connected_components

from multimix.data.records import NORMAL, PNEUMONIA, Record
from multimix.data.synthetic import SITES, SiteStyle, generate_arrays, generate_records
from multimix.data.synthetic.anatomy import clean_mask
from multimix.data.synthetic.generator import _render_case

REQUIRED_SITES = ("chex", "jsrt", "montgomery", "nih", "shenzhen")


def test_required_sites_are_frozen_styles():
    assert set(REQUIRED_SITES) <= set(SITES)
    style = SITES["jsrt"]
    assert isinstance(style, SiteStyle)
    with pytest.raises(dataclasses.FrozenInstanceError):
        style.gamma = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("site", REQUIRED_SITES)
def test_shapes_dtypes_and_ranges(site):
    images, masks, labels = generate_arrays(4, site=site, image_size=32, seed=1)
    assert images.shape == masks.shape == (4, 32, 32)
    assert labels.shape == (4,)
    assert images.dtype == np.float32 and masks.dtype == np.uint8 and labels.dtype == np.int64
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(masks)) <= {0, 1}
    assert set(np.unique(labels)) <= {NORMAL, PNEUMONIA}


def test_same_seed_gives_identical_arrays():
    first = generate_arrays(5, site="montgomery", image_size=40, seed=7, pneumonia_fraction=0.4)
    second = generate_arrays(5, site="montgomery", image_size=40, seed=7, pneumonia_fraction=0.4)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_different_seeds_differ():
    images_a, masks_a, _ = generate_arrays(3, site="jsrt", image_size=32, seed=0)
    images_b, masks_b, _ = generate_arrays(3, site="jsrt", image_size=32, seed=1)
    assert not np.array_equal(images_a, images_b)
    assert not np.array_equal(masks_a, masks_b)


def test_images_within_a_batch_differ():
    images, _, _ = generate_arrays(4, site="jsrt", image_size=32, seed=0)
    assert all(not np.array_equal(images[0], other) for other in images[1:])


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_image_i_does_not_depend_on_n(fraction):
    small = generate_arrays(3, site="chex", image_size=32, seed=4, pneumonia_fraction=fraction)
    large = generate_arrays(7, site="chex", image_size=32, seed=4, pneumonia_fraction=fraction)
    for a, b in zip(small, large, strict=True):
        np.testing.assert_array_equal(a, b[:3])


@pytest.mark.parametrize(("n", "fraction"), [(10, 0.5), (7, 0.3), (5, 0.0), (5, 1.0), (3, 0.5), (0, 0.5)])
def test_label_counts(n, fraction):
    _, _, labels = generate_arrays(n, site="jsrt", image_size=16, pneumonia_fraction=fraction)
    assert int(labels.sum()) == round(n * fraction)
    assert len(labels) == n


def test_label_order_is_seeded_and_shuffled():
    orders = {tuple(generate_arrays(12, site="jsrt", image_size=16, seed=seed)[2]) for seed in range(4)}
    assert len(orders) > 1
    assert any(list(order) != sorted(order) for order in orders)


@pytest.mark.parametrize("site", REQUIRED_SITES)
def test_masks_have_two_sizeable_lungs(site):
    _, masks, _ = generate_arrays(6, site=site, image_size=48, seed=2)
    for mask in masks:
        components = connected_components(mask, connectivity=2)
        assert components.max() == 2
        areas = np.bincount(components.ravel())[1:] / mask.size
        assert areas.min() > 0.05, areas
        assert 0.15 < areas.sum() < 0.5, areas.sum()


def test_masks_follow_the_image_geometry():
    """The lungs are the dark fields of the image: darker inside the mask than around it."""
    images, masks, _ = generate_arrays(6, site="jsrt", image_size=64, seed=3, pneumonia_fraction=0)
    for image, mask in zip(images, masks, strict=True):
        lungs = mask.astype(bool)
        ring = ndimage.binary_dilation(lungs, iterations=3) & ~lungs
        assert image[lungs].mean() < image[ring].mean() - 0.1


def test_clean_mask_repairs_touching_lungs_and_specks():
    x = np.tile(np.linspace(-1, 1, 20, dtype=np.float32), (20, 1))
    mask = np.zeros((20, 20), bool)
    mask[5:15, 3:17] = True  # one blob straddling the midline
    mask[1, 1] = True  # a stray speck
    cleaned = clean_mask(mask, x)
    assert connected_components(cleaned, connectivity=2).max() == 2
    assert not cleaned[1, 1]
    assert cleaned[5:15, 3:9].all() and cleaned[5:15, 12:17].all()


@pytest.mark.parametrize("size", [16, 64, 256])
def test_all_sizes_render(size):
    images, masks, _ = generate_arrays(1, site="nih", image_size=size, seed=0)
    assert images.shape == (1, size, size)
    assert connected_components(masks[0], connectivity=2).max() == 2


def test_opacity_layer_lies_inside_the_lungs():
    for index in range(6):
        case = _render_case("shenzhen", 0, index, PNEUMONIA, 48)
        assert case.n_opacities >= 1
        assert case.opacity.max() > 0
        assert np.all(case.opacity[case.mask == 0] == 0)


def test_pneumonia_changes_only_the_lungs():
    """Same index rendered normal and pneumonia: identical except in and just around the lungs
    (the site blur spreads the opacity edge by a pixel or two)."""
    for index in range(4):
        normal = _render_case("jsrt", 1, index, NORMAL, 48)
        sick = _render_case("jsrt", 1, index, PNEUMONIA, 48)
        np.testing.assert_array_equal(normal.mask, sick.mask)
        changed = np.abs(sick.image - normal.image) > 1e-6
        near_lungs = ndimage.binary_dilation(normal.mask.astype(bool), iterations=3)
        assert changed.any()
        assert not (changed & ~near_lungs).any()


def test_pneumonia_brightens_the_lungs_on_average():
    images, masks, labels = generate_arrays(40, site="jsrt", image_size=32, seed=5)
    lung_means = np.array([image[mask == 1].mean() for image, mask in zip(images, masks, strict=True)])
    assert lung_means[labels == PNEUMONIA].mean() > lung_means[labels == NORMAL].mean()


def test_some_pneumonia_cases_are_subtle():
    records = generate_records(120, site="jsrt", image_size=16, seed=0, pneumonia_fraction=1.0)
    subtle = np.mean([record.meta["subtle"] for record in records])
    assert 0.1 < subtle < 0.45
    assert all(1 <= record.meta["opacities"] <= 3 for record in records)


def test_sites_differ():
    jsrt, _, _ = generate_arrays(8, site="jsrt", image_size=48, seed=0)
    nih, _, _ = generate_arrays(8, site="nih", image_size=48, seed=0)
    assert abs(jsrt.mean() - nih.mean()) > 0.05
    assert abs(jsrt.std() - nih.std()) > 0.01
    assert _roughness(nih) > 2 * _roughness(jsrt)  # much noisier held-out site


def _roughness(images: np.ndarray) -> float:
    """Mean absolute residual from a 3x3 median: mostly pixel noise, little anatomy."""
    return float(np.mean([np.abs(im - ndimage.median_filter(im, 3)).mean() for im in images]))


def test_same_seed_differs_between_sites():
    chex, _, _ = generate_arrays(2, site="chex", image_size=32, seed=0)
    shenzhen, _, _ = generate_arrays(2, site="shenzhen", image_size=32, seed=0)
    assert not np.array_equal(chex, shenzhen)


def test_unknown_site_lists_known_sites():
    with pytest.raises(ValueError, match="unknown site") as error:
        generate_arrays(1, site="mars")
    for site in REQUIRED_SITES:
        assert site in str(error.value)
    with pytest.raises(ValueError, match="unknown site"):
        generate_records(1, site="mars")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "n must be"),
        ({"n": 1, "image_size": 15}, "image_size"),
        ({"n": 1, "pneumonia_fraction": -0.1}, "pneumonia_fraction"),
        ({"n": 1, "pneumonia_fraction": 1.5}, "pneumonia_fraction"),
        ({"n": 1, "seed": -3}, "seed"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_arrays(**kwargs)
    with pytest.raises(ValueError, match=message):
        generate_records(**kwargs)


def test_records_fields():
    records = generate_records(6, site="montgomery", image_size=32, seed=9, pneumonia_fraction=0.5)
    images, masks, labels = generate_arrays(6, site="montgomery", image_size=32, seed=9, pneumonia_fraction=0.5)
    assert len({record.uid for record in records}) == 6
    for i, record in enumerate(records):
        assert isinstance(record, Record)
        assert record.uid == f"synthetic-montgomery-9-{i:05d}"
        assert record.patient_id == record.uid
        assert record.source == "synthetic-montgomery"
        assert record.label == labels[i] and isinstance(record.label, int)
        np.testing.assert_array_equal(record.image, images[i])
        np.testing.assert_array_equal(record.mask, masks[i])
        assert record.image.dtype == np.float32 and record.mask.dtype == np.uint8
        assert record.has_mask and record.has_label
        assert set(record.meta) == {"site", "opacities", "subtle"}
        assert record.meta["site"] == "montgomery"
        if record.label == NORMAL:
            assert record.meta["opacities"] == 0 and record.meta["subtle"] is False
        else:
            assert record.meta["opacities"] >= 1


def test_uid_prefix_and_uniqueness_across_seeds():
    first = generate_records(3, site="jsrt", image_size=16, seed=0, uid_prefix="train")
    second = generate_records(3, site="jsrt", image_size=16, seed=1, uid_prefix="train")
    assert first[0].uid == "train-0-00000"
    assert not {r.uid for r in first} & {r.uid for r in second}
