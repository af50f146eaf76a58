"""The model card: every training run writes one; `multimix card` writes one for any checkpoint."""

import json
import shutil

import numpy as np
import pytest

from multimix.metrics.operating_point import OperatingPoint
from multimix.prediction import Predictor
from multimix.runs.cli import main as multimix
from multimix.runs.model_card import card_facts
from multimix.utils.checkpoints import load_checkpoint, save_checkpoint


def test_a_training_run_ends_with_its_model_card(trained_checkpoint):
    card = (trained_checkpoint.parent.parent / "MODEL_CARD.md").read_text()
    for expected in (
        "0 = normal, 1 = pneumonia",
        "threshold 0.500 (default)",
        "Research use only",
        "cls labeled: 8 images (synthetic 8)",
        "validation (step",
        "in-domain test (point values",
        "MultiMixNet",
    ):
        assert expected in card, expected
    assert load_checkpoint(trained_checkpoint)["run"]["class_names"] == ["normal", "pneumonia"]


def test_the_card_names_an_operating_point_and_the_evaluation_intervals(trained_checkpoint, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_checkpoint.parent.parent, run)
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    state["operating_point"] = OperatingPoint(0.31, "youden", "nih (150 images)", images=150).to_dict()
    save_checkpoint(state, run / "checkpoints" / "calibrated.pt")
    (run / "evaluation").mkdir()
    domain = {
        "num_images": 40,
        "classification": {"num_images": 40, "metrics": {"accuracy": {"value": 0.8, "ci": [0.7, 0.9]}}},
    }
    (run / "evaluation" / "metrics.json").write_text(json.dumps({"models": [{"domains": {"in_domain": domain}}]}))
    out = tmp_path / "card.md"
    assert multimix(["card", "--checkpoint", str(run / "checkpoints" / "calibrated.pt"), "--out", str(out)]) == 0
    card = out.read_text()
    assert "threshold 0.310 (youden" in card and "nih (150 images)" in card
    assert "in_domain classification (n = 40, 95% CI): accuracy 0.800 [0.700, 0.900]" in card
    assert str(out) in capsys.readouterr().out
    assert Predictor(run / "checkpoints" / "calibrated.pt").describe()["classes"] == ["normal", "pneumonia"]


def test_a_file_that_is_no_training_checkpoint_gets_one_line(tmp_path, capsys):
    state = {"model": {}, "run": {}}
    save_checkpoint(state, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        card_facts(tmp_path / "x.pt")
    assert multimix(["card", "--checkpoint", str(tmp_path / "x.pt")]) == 1
    assert "not a training checkpoint" in capsys.readouterr().err


def test_the_card_says_plainly_when_the_model_does_not_rank_a_hospital(trained_checkpoint, tmp_path):
    from multimix.metrics.operating_point import calibrate_threshold

    run = tmp_path / "run"
    shutil.copytree(trained_checkpoint.parent.parent, run)
    state = load_checkpoint(run / "checkpoints" / "best.pt")
    rng = np.random.default_rng(0)
    chance = calibrate_threshold(rng.random(200), np.r_[np.zeros(100), np.ones(100)], fitted_on="adults")
    assert chance.details["ranks"] is False and chance.details["auroc_ci"][0] < 0.5
    state["operating_point"] = chance.to_dict()
    state["calibration"] = {
        "temperature": 2.5,
        "bias": -0.2,
        "prior": 0.7,
        "images": 60,
        "nll_before": 0.9,
        "nll_after": 0.5,
    }
    save_checkpoint(state, run / "checkpoints" / "calibrated.pt")
    (run / "evaluation").mkdir()
    block = {
        "num_images": 300,
        "metrics": {"auroc": {"value": 0.52, "ci": [0.45, 0.59]}},
        "majority_accuracy": 0.63,
        "ranks": False,
        "operating_point_fitted_images": 200,
    }
    domain = {"num_images": 300, "classification": block}
    (run / "evaluation" / "metrics.json").write_text(json.dumps({"models": [{"domains": {"cross-domain": domain}}]}))
    out = tmp_path / "card.md"
    assert multimix(["card", "--checkpoint", str(run / "checkpoints" / "calibrated.pt"), "--out", str(out)]) == 0
    card = out.read_text()
    assert "**Warning**" in card and "does not rank these images" in card
    assert "auroc 0.520 [0.450, 0.590], majority-class accuracy 0.630" in card
    assert "cross-domain: the model does not rank these images" in card
    assert "cross-domain: the operating point was chosen on 200 of these 300 images" in card
    assert "temperature 2.500, bias -0.200, fitted on the run's 60 labeled validation images (70% pneumonia" in card


def test_the_card_of_a_unet_states_no_classes_threshold_or_prior(tmp_path):
    from multimix.runs.train import run_training

    from helpers import tiny_config

    out = tmp_path / "unet"
    run_training(tiny_config(train__steps=2, model__name="unet", train__out=str(out)), progress=False)
    card = (out / "MODEL_CARD.md").read_text()
    assert "no classifier, no decision threshold" in card
    for absent in ("0 = normal", "threshold 0.500", "Training class prior", "pneumonia when"):
        assert absent not in card, absent


def _evaluated(facts, *, matrix, auroc_ci):
    block = {"confusion_matrix": matrix, "metrics": {"auroc": {"value": 0.6, "ci": auroc_ci}}, "num_images": 100}
    block["threshold"] = 0.5
    return {**facts, "evaluation": {"models": [{"domains": {"site-b": {"classification": block}}}]}}


def test_the_warnings_are_computed_from_this_models_numbers(trained_checkpoint):
    import hashlib

    from multimix.runs.model_card import model_warnings, render_card

    facts = card_facts(trained_checkpoint)
    assert facts["sha256"] == hashlib.sha256(trained_checkpoint.read_bytes()).hexdigest()
    healthy = _evaluated(
        {**facts, "validation_images": 120, "calibration": None}, matrix=[[40, 10], [8, 42]], auroc_ci=[0.81, 0.9]
    )
    assert model_warnings(healthy) == []
    # tiny validation set, normal never called, an AUROC interval across 0.5, calibration on 30 pneumonia images
    sick = _evaluated(
        {**facts, "validation_images": 2, "calibration": {"images": 200, "prior": 0.15}},
        matrix=[[0, 50], [0, 50]],
        auroc_ci=[0.45, 0.62],
    )
    warnings = model_warnings(sick)
    assert len(warnings) == 4
    assert "2 validation images" in warnings[0] and "never calls normal" in warnings[1]
    assert "0.450-0.620" in warnings[2] and "pneumonia 30" in warnings[3]
    card = render_card({**sick, "calibration": None})
    assert card.startswith("---\nlicense: mit\n") and f"checkpoint_sha256: {facts['sha256']}" in card
    assert "## How to use" in card and "## Citation" in card and "## Training\n" in card
    assert "true negatives 0, false positives 50" in card and "specificity 0.000" in card
