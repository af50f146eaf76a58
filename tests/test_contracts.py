"""One contract per extension point: every data source, every method and every model passes the
same checks, so a new one is tested the moment it is registered (the style of smp's model tests)."""

import importlib
import json
from pathlib import Path

import pytest
import torch
from fake_trees import montgomery, shenzhen

from multimix.config import Config
from multimix.data.keys import STREAM_NAMES
from multimix.data.records import NORMAL, PNEUMONIA
from multimix.data.sources import DATASETS, available_sources, scan_source
from multimix.data.sources.base import DatasetLayoutError
from multimix.methods import available_methods, build_method, method_class
from multimix.models import MultiMixNet, build_model
from multimix.models.classifier import build_head
from multimix.models.factory import available_models, build_network, describe_network

from helpers import SHARED_DATA, tiny_config

TINY = (4, 8, 16)


# --------------------------------------------------------------------------------------------- sources
def _sample_root(name: str, tmp_path: Path) -> Path:
    """A data root holding ``name`` in its publisher's layout: the shared real sample, or a fake tree."""
    if (SHARED_DATA / name).is_dir():
        return SHARED_DATA
    if name == "montgomery":
        montgomery(tmp_path / "montgomery", ["MCUCXR_0001_0", "MCUCXR_0002_1"], ["MCUCXR_0001_0"], ["MCUCXR_0001_0"])
        return tmp_path
    if name == "shenzhen":
        shenzhen(tmp_path / "shenzhen", ["CHNCXR_0001_0", "CHNCXR_0002_1"], ["CHNCXR_0001_0"])
        return tmp_path
    pytest.skip(f"no sample of {name} (shared samples not found at {SHARED_DATA})")


@pytest.mark.parametrize("name", DATASETS)
def test_every_source_scans_into_well_formed_records(name, tmp_path):
    scan = scan_source(name, _sample_root(name, tmp_path), on_error="skip")
    assert scan.name == name and scan.records
    uids = [r.uid for r in scan.records]
    assert len(set(uids)) == len(uids)  # one record per image
    for record in scan.records:
        assert record.source == name and record.uid.startswith(f"{name}/")
        assert record.image_path is not None and Path(record.image_path).is_absolute()
        assert Path(record.image_path).is_file()
        assert record.label in (None, NORMAL, PNEUMONIA)
        assert all(Path(p).is_file() for p in record.mask_paths)
        json.dumps(record.meta)  # plain data: it goes into caches and split files


@pytest.mark.parametrize("name", DATASETS)
def test_every_source_refuses_a_bad_error_policy_and_a_wrong_folder(name, tmp_path):
    with pytest.raises(ValueError, match="on_error must be one of"):
        scan_source(name, _sample_root(name, tmp_path), on_error="ignore")
    (tmp_path / "empty" / name).mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=name):
        scan_source(name, tmp_path / "empty")


def test_the_folder_source_passes_the_same_contract(tmp_path):
    sample = SHARED_DATA / "folder_seg"
    if not sample.is_dir():
        pytest.skip(f"shared folder sample not found at {sample}")
    scan = scan_source(f"folder:{sample}", on_error="skip")
    assert scan.records and all(Path(r.image_path).is_file() for r in scan.records)
    assert "folder" not in available_sources() and set(DATASETS) == set(available_sources())


# --------------------------------------------------------------------------------------------- methods
def _method_context(name: str) -> dict:
    if name == "distill":
        return {"teacher": build_model("enc", widths=TINY), "labeled_class_labels": [0, 1]}
    return {"labeled_class_labels": [0, 1, 1]}


@pytest.mark.parametrize("name", available_methods())
def test_every_method_builds_from_its_own_section_and_keeps_its_state(name):
    cls = method_class(name)
    cfg = tiny_config()
    method = build_method(name, cfg, **_method_context(name))
    assert type(method) is cls and method.name == name and cls.display_name
    assert cls.config_section in Config.__dataclass_fields__  # its options live in one section of the config
    model = build_model("multimix", widths=TINY)
    assert set(method.streams(model)) <= set(STREAM_NAMES)
    optimizer, scheduler = method.configure_optimizer(model, cfg.train)
    assert {id(p) for group in optimizer.param_groups for p in group["params"]} == {id(p) for p in model.parameters()}
    method.load_state_dict(method.state_dict())  # what a checkpoint saves, it takes back
    head = cls.head_spec(cfg)
    if cls.pretraining:  # a pretraining method names a head the models can build
        assert head is not None and isinstance(build_head(head, 16), torch.nn.Module)
    else:
        assert head is None


# --------------------------------------------------------------------------------------------- models
@pytest.mark.parametrize("name", available_models())
def test_every_model_returns_what_its_heads_promise_and_rebuilds_from_its_description(name):
    torch.manual_seed(0)
    model = build_model(name, widths=TINY, dropout=0.0).eval()
    x = torch.rand(2, 1, 32, 32)
    out = model(x)
    assert (out.seg_logits is not None) == model.has_seg_head
    assert (out.cls_logits is not None) == model.has_cls_head
    if model.has_seg_head:
        assert out.seg_logits.shape == (2, 1, 32, 32)
    if model.has_cls_head:
        assert out.cls_logits.shape == (2, 2) and model.classify(x).cls_logits.shape == (2, 2)
    bridged = bool(describe_network(model).get("kwargs", {}).get("bridge")) and model.has_seg_head
    assert (out.saliency is not None) == bridged  # a bridged model never loses its saliency
    if bridged:
        assert out.saliency.shape == (2, 1, 32, 32) and 0 <= out.saliency.min() <= out.saliency.max() <= 1
    rebuilt = build_network(json.loads(json.dumps(describe_network(model))))
    rebuilt.load_state_dict(model.state_dict())
    again = rebuilt.eval()(x)
    for a, b in ((out.seg_logits, again.seg_logits), (out.cls_logits, again.cls_logits)):
        assert (a is None and b is None) or torch.equal(a, b)
    model.train()
    loss = sum(t.float().mean() for t in (model(x).seg_logits, model(x).cls_logits) if t is not None)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())  # every parameter is trained by some head


def test_the_contracts_reach_every_registered_extension():
    factory = importlib.import_module("multimix.models.factory")
    assert factory.MODELS.keys() == set(available_models()) and len(available_models()) == 5
    assert all(isinstance(build_model(name, widths=TINY), MultiMixNet) for name in available_models())
    assert set(available_methods()) == {"barlow", "distill", "finetune", "multimix", "simclr"}
    assert set(DATASETS) == {"chex", "jsrt", "montgomery", "shenzhen", "nih"}
