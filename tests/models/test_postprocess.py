import numpy as np
import pytest

from multimix.models.postprocess import clean_lung_mask, clean_lung_masks, mask_topology


def lungs_with_trouble() -> np.ndarray:
    """Two lungs (one with a hole), a fragment and a speck outside the chest."""
    mask = np.zeros((40, 40), bool)
    mask[5:35, 4:16] = True  # right lung, 360 px
    mask[15:20, 8:12] = False  # a hole: a dense opacity the network missed
    mask[5:33, 22:34] = True  # left lung, 336 px
    mask[36:39, 36:39] = True  # a blob below the diaphragm, 9 px
    mask[1, 1] = True  # a speck
    return mask


def test_keeps_two_largest_regions_and_fills_holes():
    raw = lungs_with_trouble()
    assert mask_topology(raw) == (4, 1)
    clean = clean_lung_mask(raw)
    expected = np.zeros_like(raw)
    expected[5:35, 4:16] = True
    expected[5:33, 22:34] = True
    assert np.array_equal(clean, expected) and mask_topology(clean) == (2, 0)


def test_a_speck_is_not_kept_as_the_second_lung():
    mask = np.zeros((20, 20), bool)
    mask[2:18, 2:10] = True
    mask[15, 15] = True  # 1 px against 128: below min_share of the largest
    assert mask_topology(clean_lung_mask(mask)) == (1, 0)
    assert clean_lung_mask(mask, min_share=0.0)[15, 15]


def test_empty_and_batched_masks():
    empty = np.zeros((8, 8), bool)
    assert not clean_lung_mask(empty).any() and mask_topology(empty) == (0, 0)
    stack = clean_lung_masks(np.stack([lungs_with_trouble(), lungs_with_trouble()]))
    assert stack.shape == (2, 40, 40) and all(mask_topology(m) == (2, 0) for m in stack)
    with pytest.raises(ValueError, match="2-D"):
        clean_lung_mask(np.zeros((2, 8, 8), bool))


def test_drop_edge_regions_removes_the_air_beside_the_body():
    mask = lungs_with_trouble()
    mask[10:30, 36:40] = True  # dark air at the right edge, 80 px: bigger than nothing, not a lung
    mask[5:35, 4:16] = False  # one lung missed, so the air would be the second "lung"
    kept = clean_lung_mask(mask)
    assert kept[20, 39], "without the rule the air is kept as the second largest region"
    dropped = clean_lung_mask(mask, drop_edge_regions=True)
    expected = np.zeros_like(mask)
    expected[5:33, 22:34] = True
    assert np.array_equal(dropped, expected)


def test_drop_edge_regions_leaves_an_all_edge_mask_empty():
    mask = np.zeros((32, 32), bool)
    mask[:, :5] = True
    assert not clean_lung_mask(mask, drop_edge_regions=True).any()
    assert clean_lung_mask(mask).sum() == 32 * 5
