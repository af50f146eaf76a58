"""One contract per extension point: every data source, every method and every model passes the
same checks, so a new one is tested the moment it is registered (the style of smp's model tests)."""

import importlib
import json
import os
from pathlib import Path

import pytest
import torch
from fake_trees import published_root

from multimix.config import Config
from multimix.data.keys import CLS_S, CLS_U, CLS_W, CLS_X, CLS_Y, SEG_U, SEG_X, SEG_Y, STREAM_NAMES, VIEW1, VIEW2
from multimix.data.records import NORMAL, PNEUMONIA
from multimix.data.sources import DATASETS, available_sources, scan_source
from multimix.data.sources.base import DatasetLayoutError
from multimix.methods import available_methods, build_method, method_class
from multimix.models import build_model
from multimix.models.classifier import build_head
from multimix.models.factory import available_models, build_network, describe_network
from multimix.runs.pretrain import make_pretrain_model

from helpers import SHARED_DATA, tiny_config

TINY = (4, 8, 16)


# --------------------------------------------------------------------------------------------- sources
def _sample_root(name: str, tmp_path: Path) -> Path:
    """A data root holding ``name`` in its publisher's layout: the shared real sample, or else a
    fake tree of synthetic images in that layout (so every contract runs on a fresh clone)."""
    if (SHARED_DATA / name).is_dir():
        return SHARED_DATA
    return published_root(tmp_path / "fake")


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
        sample = published_root(tmp_path / "fake") / "site"  # class folders, images/ and masks/
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


def _network_and_batch(name: str, cfg: Config) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The network a method trains (a pretraining net for stage-1 methods, else the MultiMix
    network) and one batch of every stream it asks for, two images each."""
    g = torch.Generator().manual_seed(0)

    def images() -> torch.Tensor:
        return torch.rand(2, 1, 32, 32, generator=g)

    if method_class(name).pretraining:
        cfg.ssl.method = name
        return make_pretrain_model(cfg), {VIEW1: images(), VIEW2: images(), "label": torch.tensor([0, -1])}
    model = build_model("multimix", widths=TINY)
    method = build_method(name, cfg, **_method_context(name))
    entries = {
        SEG_X: lambda: {SEG_X: images(), SEG_Y: (images() > 0.5).float()},
        SEG_U: lambda: {SEG_U: images()},
        CLS_X: lambda: {CLS_X: images(), CLS_Y: torch.tensor([0, 1])},
        CLS_U: lambda: {CLS_W: images(), CLS_S: images()},
    }
    batch = {key: value for stream in method.streams(model) for key, value in entries[stream]().items()}
    return model, batch


@pytest.mark.parametrize("name", available_methods())
def test_every_method_trains_what_its_streams_reach(name):
    """One train_step: a finite scalar loss whose gradient reaches every parameter of the parts its
    streams feed (the encoder always; the decoder with lung masks; the class head with labels)."""
    torch.manual_seed(0)
    cfg = tiny_config(method__ssl_rampup_steps=0)
    model, batch = _network_and_batch(name, cfg)
    method = build_method(name, cfg, **_method_context(name))
    model.train()
    loss, logs = method.train_step(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad and logs
    loss.backward()
    parts = {"encoder": getattr(model, "encoder", None) or getattr(model, "ssl", None)}
    if SEG_X in batch and getattr(model, "decoder", None) is not None:
        parts["decoder"] = model.decoder
    untouched = [
        f"{part}.{key}" for part, module in parts.items() for key, p in module.named_parameters() if p.grad is None
    ]
    assert not untouched, f"{name}: no gradient reaches {untouched[:5]}"


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


@pytest.mark.parametrize("name", available_models())
@pytest.mark.parametrize("channels, classes, widths", [(1, 2, (4, 8)), (3, 3, (4, 8, 16, 32))])
def test_every_model_takes_other_channels_classes_and_widths(name, channels, classes, widths):
    model = build_model(name, in_channels=channels, num_classes=classes, widths=widths, dropout=0.0).eval()
    x = torch.rand(2, channels, 32, 32)
    out = model(x)
    if model.has_cls_head:
        assert out.cls_logits.shape == (2, classes)
    if model.has_seg_head:
        assert out.seg_logits.shape == (2, 1, 32, 32)
    rebuilt = build_network(json.loads(json.dumps(describe_network(model))))
    rebuilt.load_state_dict(model.state_dict())
    again = rebuilt.eval()(x)
    for a, b in ((out.seg_logits, again.seg_logits), (out.cls_logits, again.cls_logits)):
        assert (a is None and b is None) or torch.equal(a, b)


GOLDEN = Path(__file__).parent / "golden" / "model_outputs.json"


def _fingerprint(name: str) -> dict[str, list[float]]:
    """A seeded model's outputs on a seeded image, reduced to a few numbers."""
    torch.manual_seed(0)
    model = build_model(name, widths=TINY, dropout=0.0).eval()
    out = model(torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1)))
    prints = {}
    for field in ("cls_logits", "seg_logits", "saliency"):
        value = getattr(out, field)
        if value is not None:
            prints[field] = [
                float(value.double().mean()),
                float(value.double().std()),
                float(value.double().abs().max()),
            ]
    return prints


@pytest.mark.parametrize("name", available_models())
def test_every_model_gives_its_recorded_output(name):
    """The same seed gives the same network and the same outputs as when they were recorded
    (MULTIMIX_RECORD_GOLDEN=1 records them anew, for a deliberate change or a new model)."""
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("MULTIMIX_RECORD_GOLDEN"):
        recorded[name] = _fingerprint(name)
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    assert name in recorded, f"no recorded output of {name!r}: run with MULTIMIX_RECORD_GOLDEN=1 once"
    now = _fingerprint(name)
    assert now.keys() == recorded[name].keys()
    for field, values in now.items():
        assert values == pytest.approx(recorded[name][field], rel=1e-4, abs=1e-6), field


def test_the_contracts_reach_every_registered_extension():
    # the tests above are parametrised by the registries, so an extension is covered by registering it
    factory = importlib.import_module("multimix.models.factory")
    assert set(factory.MODELS) == set(available_models()) >= {"unet", "enc", "umtl", "umtls", "multimix"}
    assert set(available_methods()) >= {"barlow", "distill", "finetune", "multimix", "simclr"}
    assert set(DATASETS) == set(available_sources()) >= {"chex", "jsrt", "montgomery", "shenzhen", "nih"}
