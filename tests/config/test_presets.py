import pytest

from multimix.config import PACKAGED_CONFIGS, Config, load_config
from multimix.config.presets import PRESET_NAMES, display_name, preset_of, preset_overrides
from multimix.runs.ablation import Cell, grid

from helpers import REPO_ROOT

ROOT = REPO_ROOT


@pytest.mark.parametrize("name", [p for p in PRESET_NAMES if p != "multimix"])
def test_presets_are_read_from_the_baseline_yaml_files(name):
    from_yaml = load_config(PACKAGED_CONFIGS / "baselines" / f"{name}.yaml")
    from_preset = load_config("multimix", preset_overrides(name))
    assert from_yaml.to_dict() == from_preset.to_dict()
    assert preset_of(from_yaml) == name


def test_packaged_default_is_the_schema_defaults():
    # one source of truth: the default config file adds nothing to the dataclass defaults
    assert load_config("multimix").to_dict() == Config().to_dict()
    assert Config().model.widths == [16, 32, 64, 128] and Config().method.ssl_rampup_steps == 300


def test_main_config_is_multimix_and_display_names_follow_the_paper():
    cfg = load_config(PACKAGED_CONFIGS / "multimix.yaml")
    assert preset_of(cfg) == "multimix" and display_name(cfg) == "MultiMix"
    assert display_name(load_config(PACKAGED_CONFIGS / "baselines" / "umtls_ssl.yaml")) == "UMTLS-SSL"
    odd = load_config(None, {"model.name": "umtl", "method.cls_ssl": True, "method.seg_ssl": True})
    assert preset_of(odd) is None and display_name(odd) == "umtl+fixmatch+kl"
    unet_kl = load_config(None, {"model.name": "unet", "method.cls_ssl": True, "method.seg_ssl": True})
    assert display_name(unet_kl) == "unet+kl"  # FixMatch cannot act without a class head


def test_unknown_preset_is_named():
    with pytest.raises(ValueError, match="unet_plus"):
        preset_overrides("unet_plus")


def test_grid_trains_budget_blind_models_once_per_budget_they_use():
    cells = grid(["unet", "enc", "multimix"], ["10", "all"], ["100", "1000"], [0, 1])
    assert len([c for c in cells if c.preset == "unet"]) == 2 * 2  # seg budgets x seeds
    assert len([c for c in cells if c.preset == "enc"]) == 2 * 2  # cls budgets x seeds
    assert len([c for c in cells if c.preset == "multimix"]) == 2 * 2 * 2
    assert Cell("unet", "10", "100", 0) in cells and len(set(cells)) == len(cells)
    assert Cell("unet", "10", "100", 0).name == "unet-seg10-cls100-seed0"
    with pytest.raises(ValueError, match="resnet"):
        grid(["resnet"], ["10"], ["100"], [0])
