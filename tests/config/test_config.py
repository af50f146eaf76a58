import pytest
import yaml

from multimix.config import (
    PACKAGED_CONFIGS,
    Config,
    find_config,
    load_config,
    packaged_config_names,
    parse_overrides,
    save_config,
)
from multimix.config import PACKAGED_CONFIGS as CONFIGS


def test_overrides_are_coerced_to_field_types():
    cfg = load_config(
        None,
        {
            "train.lr": "1e-3",
            "train.steps": "5",
            "train.channels_last": "true",
            "model.widths": "[8, 16]",
            "synthetic.cls_sites": "chex,jsrt",
            "train.out": "none",
        },
    )
    assert cfg.train.lr == 0.001 and cfg.train.steps == 5 and cfg.train.channels_last is True
    assert cfg.model.widths == [8, 16] and cfg.synthetic.cls_sites == ["chex", "jsrt"] and cfg.train.out is None


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.lrr", 1, "unknown key 'train.lrr'"),
        ("optim.lr", 1, "section.key"),
        ("train.steps", "ten", "expected a number"),
        ("train.channels_last", "maybe", "expected true/false"),
    ],
)
def test_bad_overrides_are_named(key, value, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, {key: value})


def test_parse_overrides():
    assert parse_overrides(["train.lr=0.1", "data.seg_labels = all"]) == {"train.lr": "0.1", "data.seg_labels": "all"}
    with pytest.raises(ValueError, match="section.key=value"):
        parse_overrides(["train.lr"])


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config(CONFIGS / "multimix.yaml", {"train.seed": 3})
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_baselines_extend_the_default_and_set_model_and_flags():
    expected = {
        "unet": ("unet", False, False),
        "enc": ("enc", False, False),
        "enc_ssl": ("enc", True, False),
        "umtl": ("umtl", False, False),
        "umtls": ("umtls", False, False),
        "umtls_ssl": ("umtls", True, False),
    }
    default = load_config(CONFIGS / "multimix.yaml")
    for name, (model, cls_ssl, seg_ssl) in expected.items():
        cfg = load_config(CONFIGS / "baselines" / f"{name}.yaml")
        assert (cfg.model.name, cfg.method.cls_ssl, cfg.method.seg_ssl) == (model, cls_ssl, seg_ssl)
        assert cfg.data == default.data and cfg.train == default.train


def test_unknown_section_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"optimizer": {"lr": 1}}))
    with pytest.raises(ValueError, match="bad.yaml: unknown section 'optimizer'"):
        load_config(path)
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "missing.yaml")


def test_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_default_dataclass_matches_total_steps():
    cfg = Config()
    assert cfg.train.total_steps == cfg.train.epochs * cfg.train.steps_per_epoch
    cfg.train.steps = 7
    assert cfg.train.total_steps == 7


def test_configs_are_found_by_name_by_old_checkout_path_and_as_files(tmp_path):
    assert find_config("real") == PACKAGED_CONFIGS / "real.yaml"
    assert find_config("umtl") == find_config("baselines/umtl") == find_config("configs/baselines/umtl.yaml")
    own = tmp_path / "mine.yaml"
    own.write_text("extends: real\ntrain:\n  steps: 5\n")  # a user's file layered on a packaged one
    cfg = load_config(own)
    assert cfg.train.steps == 5 and cfg.data.source == "real" and cfg.method.domain_weight == 1.0
    assert {"multimix", "real", "paper", "finetune", "distill", "baselines/umtls_ssl"} <= set(packaged_config_names())
    with pytest.raises(FileNotFoundError, match="packaged: .*baselines/enc"):
        find_config("baselines/nope")


def test_configs_written_before_the_data_split_still_load(tmp_path):
    # a run folder's config.yaml (and a checkpoint's run config) from before synthetic/real had sections
    old = {"data": {"source": "real", "root": "/data/cxr", "seg_pool": 12, "cache_dir": "/cache", "image_size": 96}}
    cfg = Config.from_dict(old)
    assert (cfg.real.root, cfg.synthetic.seg_pool, cfg.real.cache_dir, cfg.data.image_size) == (
        "/data/cxr",
        12,
        "/cache",
        96,
    )
    assert load_config(None, {"data.seg_sources": "jsrt,shenzhen"}).real.seg_sources == ["jsrt", "shenzhen"]
    assert "root" not in Config().to_dict()["data"] and Config().to_dict()["real"]["root"] is None


def test_extends_looks_beside_the_file_then_in_the_package_never_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "decoy.yaml").write_text("train:\n  steps: 999\n")  # a file of that name in the working folder
    sub = tmp_path / "mine"
    sub.mkdir()
    (sub / "a.yaml").write_text("extends: decoy.yaml\n")
    with pytest.raises(
        FileNotFoundError, match="extends 'decoy.yaml', which is neither beside it nor a packaged config"
    ):
        load_config(sub / "a.yaml")
    (sub / "b.yaml").write_text("extends: paper\n")
    assert load_config(sub / "b.yaml").data.image_size == 256
