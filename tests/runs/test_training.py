import pytest
import torch

from multimix.data.pools import build_pools
from multimix.methods import build_method
from multimix.models.factory import make_model
from multimix.runs.wiring import make_split

from helpers import tiny_config


def test_balanced_class_weights_come_from_the_labeled_set():
    cfg = tiny_config(method__class_weights="balanced")
    method = build_method("multimix", cfg, labeled_class_labels=[0, 0, 0, 1])
    assert torch.allclose(method.class_weights, torch.tensor([2 / 3, 2.0]))
    assert build_method("multimix", tiny_config(), labeled_class_labels=[0, 1]).class_weights is None
    with pytest.raises(ValueError, match="class_weights"):
        build_method("multimix", tiny_config(method__class_weights="inverse"), labeled_class_labels=[0, 1])


def test_pools_and_split_follow_the_config(tmp_path):
    cfg = tiny_config()
    pools = build_pools(cfg)
    assert len(pools.seg_pool) == 12 and len(pools.cls_pool) == 24
    assert {r.source for r in pools.cross} == {"synthetic-nih"}
    assert {r.source for r in pools.test} == {"synthetic-jsrt", "synthetic-chex"}
    split = make_split(cfg, pools, tmp_path / "split.json", resume=False)
    assert len(split.seg.labeled) == 4 and len(split.cls.labeled) == 8
    assert len(split.cls.unlabeled) == 16 and split.meta["exclude_labeled_from_unlabeled"] is True
    again = make_split(cfg, build_pools(cfg), tmp_path / "split.json", resume=False)
    assert again.to_dict() == split.to_dict()


def test_cross_sites_must_not_be_training_sites():
    cfg = tiny_config(synthetic__cross_sites="chex")
    with pytest.raises(ValueError, match="must not be trained on"):
        build_pools(cfg)
    with pytest.raises(ValueError, match="unknown synthetic site"):
        build_pools(tiny_config(synthetic__cross_sites="mars"))


def test_model_follows_the_config():
    model = make_model(tiny_config(model__name="umtl"))
    assert model.encoder.widths == (4, 8, 16) and not model.has_bridge


def test_budget_all_keeps_the_unsupervised_terms_by_reusing_the_labeled_images(tmp_path):
    from multimix.runs.train import run_training

    cfg = tiny_config(data__seg_labels="all", data__cls_labels="all", train__steps=2, train__out=str(tmp_path / "all"))
    summary = run_training(cfg, progress=False)
    assert summary["steps"] == 2
    logged = [line for line in (tmp_path / "all" / "metrics.jsonl").read_text().splitlines() if '"fixmatch"' in line]
    assert logged and '"kl"' in logged[0]  # both unsupervised terms were computed


def test_unlabeled_sources_join_both_unlabeled_streams_without_labels(tmp_path):
    cfg = tiny_config(data__unlabeled_sources="nih,jsrt")
    pools = build_pools(cfg)
    split = make_split(cfg, pools, tmp_path / "split.json", resume=False)
    cross = [r.uid for r in pools.cross]  # the target site's images: semi-supervised domain adaptation
    seg_pool = [r.uid for r in pools.seg_pool]
    assert set(cross) <= set(split.cls.unlabeled) and set(cross) <= set(split.seg.unlabeled)
    assert set(seg_pool) - set(split.cls.labeled) <= set(
        split.cls.unlabeled
    )  # the segmentation adults reach the classifier
    assert not set(cross) & {*split.cls.labeled, *split.seg.labeled}
    assert split.meta["extra_unlabeled"] == len(pools.extra_unlabeled) == len(cross) + len(seg_pool)
    assert len(split.cls.unlabeled) == len(set(split.cls.unlabeled))
    plain = make_split(tiny_config(), build_pools(tiny_config()), tmp_path / "s.json", resume=False)
    assert plain.cls.labeled == split.cls.labeled and "extra_unlabeled" not in plain.meta
    with pytest.raises(ValueError, match="unknown synthetic site"):
        build_pools(tiny_config(data__unlabeled_sources="mars"))


def test_real_data_defaults_to_the_real_recipe(tmp_path):
    from multimix.config import load_config
    from multimix.runs.commands.train import parse_args
    from multimix.runs.flags import REAL_DATA_CONFIG, resolve_config

    cfg = resolve_config(parse_args(["--data-root", str(tmp_path)]), {})
    assert cfg.data.source == "real" and cfg.real.root == str(tmp_path)
    assert cfg.data.image_size == load_config(REAL_DATA_CONFIG).data.image_size
    # the recipe that won on the development data (docs/results/)
    assert cfg.data.balanced_labeled and cfg.method.class_weights == "none"
    assert cfg.method.domain_weight == 1.0 and cfg.inference.clean_masks
    synthetic = resolve_config(parse_args([]), {})
    assert synthetic.data.source == "synthetic" and synthetic.data.image_size == 64
    assert synthetic.method.domain_weight == 0.0


def test_classification_images_join_the_unlabeled_segmentation_stream_when_asked(tmp_path):
    """``data.seg_unlabeled_from_cls`` gives the decoder the classifier's own images, exactly as
    naming the classification source in ``data.unlabeled_sources`` would."""
    cfg = tiny_config(data__seg_unlabeled_from_cls="true")
    pools = build_pools(cfg)
    split = make_split(cfg, pools, tmp_path / "a.json", resume=False)
    cls_images = {r.uid for r in pools.cls_pool}
    assert cls_images <= set(split.seg.unlabeled) and not cls_images & set(split.seg.labeled)
    assert split.cls.labeled and not set(split.cls.labeled) & set(split.cls.unlabeled)  # labels untouched
    named = tiny_config(data__unlabeled_sources="chex")
    same = make_split(named, build_pools(named), tmp_path / "b.json", resume=False)
    assert same.to_dict() == split.to_dict()
    plain = make_split(tiny_config(), build_pools(tiny_config()), tmp_path / "c.json", resume=False)
    assert not cls_images & set(plain.seg.unlabeled)


def test_a_labels_table_feeds_the_unlabeled_segmentation_stream_of_a_real_run(tmp_path):
    from fake_trees import png

    masks, labels = ["path,mask"], ["path,label"]
    for i in range(6):
        png(tmp_path / "adults" / f"a{i}.png")
        png(tmp_path / "adults" / f"m{i}.png", value=255)
        masks.append(f"a{i}.png,m{i}.png")
    for i in range(12):
        png(tmp_path / "children" / f"c{i}.png", value=40 + i)
        labels.append(f"c{i}.png,{'pneumonia' if i % 2 else 'normal'}")
    (tmp_path / "adults" / "masks.csv").write_text("\n".join(masks) + "\n")
    (tmp_path / "children" / "labels.csv").write_text("\n".join(labels) + "\n")
    base = {
        "data__source": "real",
        "real__root": str(tmp_path),
        "real__seg_sources": f"[csv:{tmp_path / 'adults' / 'masks.csv'}]",
        "real__cls_sources": f"[csv:{tmp_path / 'children' / 'labels.csv'}]",
        "real__cross_seg_sources": "[]",
        "real__cross_cls_sources": "[]",
        "real__cache_dir": str(tmp_path / "cache"),
        "data__seg_labels": "2",
        "data__cls_labels": "4",
    }
    cfg = tiny_config(**base, data__seg_unlabeled_from_cls="true")
    pools = build_pools(cfg, progress=False)
    split = make_split(cfg, pools, tmp_path / "split.json", resume=False)
    children = {r.uid for r in pools.cls_pool}
    assert children and children <= set(split.seg.unlabeled)
    assert not {r.uid for r in pools.test} & set(split.seg.unlabeled)  # held-out children stay held out
    off = tiny_config(**base)
    assert not children & set(
        make_split(off, build_pools(off, progress=False), tmp_path / "s.json", resume=False).seg.unlabeled
    )
