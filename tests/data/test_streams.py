import numpy as np
import pytest
import torch

from multimix.data.records import Record
from multimix.data.streams import EvalDataset, StepBatches
from multimix.data.synthetic import generate_records
from multimix.methods import MultiMixMethod
from multimix.models import build_model


@pytest.fixture(scope="module")
def pools():
    seg = generate_records(6, site="jsrt", image_size=32, seed=1)
    cls = generate_records(10, site="chex", image_size=32, seed=2)
    return {"seg_x": seg[:3], "seg_u": seg[3:], "cls_x": cls[:4], "cls_u": cls[4:]}


def make(pools, **kw):
    args = dict(image_size=32, batch_size=2, seed=0, total_steps=10)
    args.update(kw)
    return StepBatches(pools, **args)


def test_batch_has_every_stream_with_the_right_shapes(pools):
    batch = make(pools)[0]
    images = {"seg_x", "seg_y", "seg_u", "cls_x", "cls_y", "cls_w", "cls_s"}
    assert set(batch) == images | {"seg_x_index", "seg_u_index", "cls_x_index", "cls_u_index"}
    for key in ("seg_x", "seg_y", "seg_u", "cls_x", "cls_w", "cls_s"):
        assert batch[key].shape == (2, 1, 32, 32) and batch[key].dtype == torch.float32
    assert set(batch["seg_y"].unique().tolist()) <= {0.0, 1.0}
    assert batch["cls_y"].dtype == torch.long and batch["cls_y"].shape == (2,)
    stream = make(pools)
    for name in ("seg_x", "seg_u", "cls_x", "cls_u"):  # each image's position in its pool, as drawn
        assert batch[f"{name}_index"].tolist() == stream.indices(name, 0)


def test_a_step_is_a_pure_function_of_seed_and_step(pools):
    a, b = make(pools)[3], make(pools, start_step=3)[0]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    c = make(pools)[4]
    assert not torch.equal(a["cls_s"], c["cls_s"])


def test_weak_and_strong_views_differ(pools):
    batch = make(pools)[0]
    assert not torch.allclose(batch["cls_w"], batch["cls_s"])


def test_each_pass_visits_every_image_once(pools):
    data = make(pools, batch_size=3, total_steps=4)
    seen = [i for step in range(2) for i in data.indices("cls_u", step)]  # 6 images, batch 3
    assert sorted(seen) == list(range(6))


def test_ranks_take_disjoint_shards(pools):
    ranks = [make(pools, rank=r, world_size=2, batch_size=1) for r in (0, 1)]
    for step in range(3):  # cls_u has 6 images: 3 steps x 2 ranks cover one pass
        assert ranks[0].indices("cls_u", step) != ranks[1].indices("cls_u", step)
    covered = sorted(i for r in ranks for step in range(3) for i in r.indices("cls_u", step))
    assert covered == list(range(6))


def test_streams_follow_the_model_and_flags():
    model = build_model("multimix", widths=(4, 8))
    assert MultiMixMethod().streams(model) == ["seg_x", "seg_u", "cls_x", "cls_u"]
    assert MultiMixMethod(cls_ssl=False, seg_ssl=False).streams(model) == ["seg_x", "cls_x"]
    assert MultiMixMethod().streams(build_model("unet", widths=(4, 8))) == ["seg_x", "seg_u"]
    assert MultiMixMethod(seg_ssl=False).streams(build_model("enc", widths=(4, 8))) == ["cls_x", "cls_u"]


def test_missing_mask_or_label_is_named():
    image = np.zeros((32, 32), np.float32)
    no_mask = [Record(uid="a1", source="x", image=image)]
    with pytest.raises(ValueError, match="a1.*has no mask"):
        make({"seg_x": no_mask})[0]
    with pytest.raises(ValueError, match="a1.*has no label"):
        make({"cls_x": no_mask})[0]
    with pytest.raises(ValueError, match="unknown streams"):
        make({"seg": no_mask})


def test_eval_dataset_marks_missing_masks_and_labels():
    image = np.zeros((40, 40), np.float32)
    item = EvalDataset([Record(uid="a", source="x", image=image)], image_size=32)[0]
    assert item["image"].shape == (1, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert not item["has_mask"] and item["label"] == -1


def _labeled_pool(normals: int, pneumonias: int) -> list[Record]:
    images = generate_records(normals + pneumonias, site="chex", image_size=32, seed=5)
    return [
        Record(uid=f"r{i}", source="chex", image=r.image, label=0 if i < normals else 1) for i, r in enumerate(images)
    ]


def test_balanced_labeled_batches_hold_both_classes_every_step():
    # 3 normal + 12 pneumonia: a plain batch of 4 misses the normals most steps
    pool = {"cls_x": _labeled_pool(3, 12)}
    plain = StepBatches(pool, image_size=32, batch_size=4, seed=0, total_steps=40)
    assert any(0 not in [pool["cls_x"][i].label for i in plain.indices("cls_x", s)] for s in range(40))
    data = StepBatches(pool, image_size=32, batch_size=4, seed=0, total_steps=40, balanced=("cls_x",))
    for step in range(40):
        labels = [pool["cls_x"][i].label for i in data.indices("cls_x", step)]
        assert sorted(labels) == [0, 0, 1, 1], step
    # each class walks its own permutations: every pneumonia image within 6 steps, normals cycling
    seen = {i for step in range(6) for i in data.indices("cls_x", step)}
    assert set(range(3, 15)) <= seen
    assert torch.equal(data[5]["cls_y"].sort().values, torch.tensor([0, 0, 1, 1]))


def test_balanced_odd_batches_give_the_remainder_to_the_classes_in_turn():
    pool = {"cls_x": _labeled_pool(4, 8)}
    data = StepBatches(pool, image_size=32, batch_size=3, seed=0, total_steps=4, balanced=("cls_x",))
    counts = [sum(pool["cls_x"][i].label == 0 for i in data.indices("cls_x", s)) for s in range(4)]
    assert counts == [2, 1, 2, 1]


def test_balanced_ranks_draw_disjoint_images():
    pool = {"cls_x": _labeled_pool(8, 8)}
    ranks = [
        StepBatches(pool, image_size=32, batch_size=2, seed=0, total_steps=2, balanced=("cls_x",), rank=r, world_size=2)
        for r in (0, 1)
    ]
    assert not set(ranks[0].indices("cls_x", 0)) & set(ranks[1].indices("cls_x", 0))


def test_a_balanced_stream_needs_labels():
    pool = {"cls_x": generate_records(4, site="chex", image_size=32, seed=5)}
    unlabeled = {"cls_x": [Record(uid=r.uid, source=r.source, image=r.image) for r in pool["cls_x"]]}
    with pytest.raises(ValueError, match="has no label"):
        StepBatches(unlabeled, image_size=32, batch_size=2, seed=0, total_steps=2, balanced=("cls_x",))
