"""Methods by name: the registry, each method's own config section, and its optimiser choice."""

import pytest
import torch

from multimix.methods import METHODS, Method, MultiMixMethod, available_methods, build_method, register_method
from multimix.models import build_model

from helpers import tiny_config


def test_every_method_is_registered_and_built_from_its_own_section():
    assert set(available_methods()) >= {"barlow", "distill", "finetune", "multimix", "simclr"}
    cfg = tiny_config(
        method__threshold=0.9,
        ssl__temperature=0.3,
        ssl__barlow_lambda=0.01,
        ssl__optimizer="adamw",
        distill__temperature=2.0,
        distill__optimizer="sgd",
    )
    assert build_method("multimix", cfg).threshold == 0.9
    simclr, barlow = build_method("simclr", cfg), build_method("barlow", cfg)
    assert simclr.temperature == 0.3 and simclr.optimizer == "adamw" and barlow.lambda_offdiag == 0.01
    teacher = build_model("enc", widths=(4, 8))
    distill = build_method("distill", cfg, teacher=teacher, labeled_class_labels=[0, 1])
    assert distill.temperature == 2.0 and distill.optimizer == "sgd"
    assert {METHODS.get(name).config_section for name in METHODS} == {"method", "ssl", "distill"}


def test_unknown_and_incomplete_methods_are_refused():
    with pytest.raises(ValueError, match=r"unknown method 'mixmatch'; available: barlow, "):
        build_method("mixmatch", tiny_config())
    with pytest.raises(ValueError, match="teacher"):
        build_method("distill", tiny_config())
    with pytest.raises(ValueError, match="already registered"):
        register_method("multimix")(type("Other", (Method,), {}))


def test_the_method_picks_the_optimiser_and_the_schedule():
    cfg = tiny_config(method__optimizer="adamw", train__lr=0.01, train__warmup_steps=4, train__steps=20)
    model = build_model("umtls", widths=(4, 8))
    optimizer, scheduler = build_method("multimix", cfg).configure_optimizer(model, cfg.train)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 / 4)  # first warm-up step of 4
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)


def test_a_method_rejects_a_network_it_cannot_train():
    from multimix.methods.simclr import SimCLRMethod

    with pytest.raises(TypeError, match="PretrainNet"):
        SimCLRMethod().train_step(build_model("enc", widths=(4, 8)), {})


def test_the_method_and_its_config_section_agree_on_every_default():
    """MultiMixMethod() is what the default config builds: the options it shares with
    MethodConfig have the same defaults (class_weights: a name in the config, a tensor here)."""
    import dataclasses

    from multimix.config.schema import MethodConfig

    config = {f.name: f.default for f in dataclasses.fields(MethodConfig)}
    method = {f.name: f.default for f in dataclasses.fields(MultiMixMethod)}
    shared = (set(config) & set(method)) - {"class_weights"}
    assert shared and {k: method[k] for k in shared} == {k: config[k] for k in shared}
