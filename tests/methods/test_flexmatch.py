"""FlexMatch's thresholds (method.threshold_mode: flexmatch): each class's bar from its learning
effect over the unlabeled pool, against a hand computation, carried through checkpoints, trained."""

import json

import pytest
import torch

from multimix.methods.pseudo_labels import PseudoLabeler
from multimix.methods.thresholds import THRESHOLD_POLICIES
from multimix.runs.train import run_training
from multimix.utils.checkpoints import load_checkpoint

from helpers import tiny_config


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log()


def test_the_thresholds_follow_the_learning_effect_by_hand():
    labeler = PseudoLabeler(mode="flexmatch", threshold=0.7)
    labeler.bind_pool(6)
    batch = logits_of([[0.9, 0.1], [0.8, 0.2], [0.4, 0.6], [0.2, 0.8]])
    _, first = labeler(batch, indices=torch.tensor([0, 1, 2, 3]))
    assert torch.equal(first, torch.zeros(2))  # nothing learned yet: every pseudo-label passes
    # remembered: images 0, 1 as class 0 and 3 as class 1 (image 2 at 0.6 is below tau)
    _, second = labeler(batch, indices=torch.tensor([0, 1, 2, 5]))
    # effects (2, 1), 3 images unused: beta = (2/3, 1/3), threshold = 0.7 beta / (2 - beta)
    assert torch.allclose(second, torch.tensor([0.7 * 0.5, 0.7 * 0.2]))
    # image 5 joined class 1: effects (2, 2), 2 unused: beta = (1, 1), the full bar
    _, third = labeler(batch, indices=torch.tensor([0, 1, 2, 5]), update=False)
    assert torch.allclose(third, torch.tensor([0.7, 0.7]))
    assert labeler.policy.selected.tolist() == [0, 0, -1, 1, -1, 1]


def test_it_needs_the_pool_and_the_indices():
    labeler = PseudoLabeler(mode="flexmatch")
    with pytest.raises(ValueError, match="index"):
        labeler(logits_of([[0.9, 0.1]]), indices=torch.tensor([0]))
    labeler.bind_pool(3)
    with pytest.raises(ValueError, match="index"):
        labeler(logits_of([[0.9, 0.1]]))


def test_its_memory_round_trips_and_other_policies_ignore_it():
    labeler = PseudoLabeler(mode="flexmatch")
    labeler.bind_pool(4)
    labeler(logits_of([[0.9, 0.1], [0.05, 0.95]]), indices=torch.tensor([3, 1]))
    state = labeler.state_dict()
    again = PseudoLabeler(mode="flexmatch")
    again.bind_pool(4)
    again.load_state_dict(state)
    assert again.policy.selected.tolist() == [-1, 1, -1, 0]
    PseudoLabeler(mode="freematch").load_state_dict(state)  # an older or other policy's state is no error
    assert "flexmatch" in THRESHOLD_POLICIES


def test_a_flexmatch_run_trains_remembers_and_resumes(tmp_path):
    out = tmp_path / "run"
    cfg = tiny_config(
        train__steps=4,
        train__out=str(out),
        method__threshold_mode="flexmatch",
        method__threshold=0.5,  # two classes: every prediction reaches it, so every image seen is remembered
        method__ssl_rampup_steps=0,
    )
    summary = run_training(cfg, progress=False)
    assert summary is not None and 0.0 <= summary["in_domain"]["accuracy"] <= 1.0
    selected = load_checkpoint(out / "checkpoints" / "last.pt")["method"]["flexmatch_selected"]
    split = json.loads((out / "split.json").read_text())
    assert selected.numel() == len(split["cls"]["unlabeled"])  # one memory slot per unlabeled image
    assert (selected != -1).any()  # confident predictions were remembered
    losses = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("pass_rate" in row for row in losses)
