"""Pseudo-label controls: distribution alignment, FreeMatch thresholds, per-class FixMatch masks."""

import math

import pytest
import torch

from multimix.losses import fixmatch_loss
from multimix.methods import MultiMixMethod
from multimix.methods.pseudo_labels import ALIGNMENT_MOMENTUM, PseudoLabeler
from multimix.methods.thresholds import FREEMATCH_MOMENTUM


def logits_of(probs: list[list[float]]) -> torch.Tensor:
    return torch.tensor(probs).log()


def test_fixed_mode_is_plain_fixmatch():
    labeler = PseudoLabeler(threshold=0.7)
    probs, threshold = labeler(logits_of([[0.9, 0.1], [0.4, 0.6]]))
    assert labeler.is_fixed and threshold == 0.7
    assert torch.allclose(probs, torch.tensor([[0.9, 0.1], [0.4, 0.6]]), atol=1e-6)


def test_distribution_alignment_against_a_hand_computation():
    labeler = PseudoLabeler(alignment="uniform")
    batch = [[0.2, 0.8], [0.4, 0.6]]  # the model over-predicts class 1: batch mean (0.3, 0.7)
    probs, _ = labeler(logits_of(batch))
    m = ALIGNMENT_MOMENTUM
    running = torch.tensor([m * 0.5 + (1 - m) * 0.3, m * 0.5 + (1 - m) * 0.7])
    assert torch.allclose(labeler.running_probs, running, atol=1e-6)
    expected = torch.tensor(batch) * (0.5 / running)
    expected = expected / expected.sum(dim=1, keepdim=True)
    assert torch.allclose(probs, expected, atol=1e-6)
    for _ in range(2000):  # once the running mean has caught up, class 1 is pulled back towards uniform
        probs, _ = labeler(logits_of(batch))
    assert probs.mean(dim=0)[0] == pytest.approx(0.5, abs=0.02)


def test_labeled_alignment_targets_the_labeled_prior_with_add_one_smoothing():
    labeler = PseudoLabeler(alignment="labeled", labeled_counts=[1, 3])
    assert torch.allclose(labeler.target, torch.tensor([2 / 6, 4 / 6]))
    with pytest.raises(ValueError, match="labeled images of each"):
        PseudoLabeler(alignment="labeled", labeled_counts=[])


def test_freematch_thresholds_against_a_hand_computation():
    labeler = PseudoLabeler(mode="freematch")
    batch = [[0.9, 0.1], [0.7, 0.3]]
    _, thresholds = labeler(logits_of(batch))
    m = FREEMATCH_MOMENTUM
    tau = m * 0.5 + (1 - m) * 0.8  # mean top confidence 0.8
    p = torch.tensor([m * 0.5 + (1 - m) * 0.8, m * 0.5 + (1 - m) * 0.2])
    assert labeler.policy.global_confidence.item() == pytest.approx(tau, abs=1e-6)
    assert torch.allclose(thresholds, tau * p / p.max(), atol=1e-6)
    assert thresholds[1] < thresholds[0]  # the class predicted less often gets the lower bar


def test_state_round_trips_and_update_false_reads_only():
    labeler = PseudoLabeler(mode="freematch", alignment="uniform")
    for _ in range(5):
        labeler(logits_of([[0.9, 0.1], [0.6, 0.4]]))
    state = labeler.state_dict()
    other = PseudoLabeler(mode="freematch", alignment="uniform")
    other.load_state_dict(state)
    a, ta = labeler(logits_of([[0.3, 0.7]]), update=False)
    b, tb = other(logits_of([[0.3, 0.7]]), update=False)
    assert torch.equal(a, b) and torch.equal(ta, tb)
    assert torch.equal(labeler.state_dict()["class_probs"], state["class_probs"])


def test_unknown_modes_are_errors():
    with pytest.raises(ValueError, match="threshold_mode must be one of fixed, freematch, flexmatch"):
        PseudoLabeler(mode="softmatch")
    with pytest.raises(ValueError, match="distribution_alignment"):
        PseudoLabeler(alignment="target")


def test_fixmatch_loss_with_class_thresholds_and_aligned_probabilities():
    weak = logits_of([[0.8, 0.2], [0.35, 0.65]])
    strong = torch.zeros(2, 2, requires_grad=True)
    # class 0 needs 0.9 (image 0 at 0.8 fails), class 1 needs 0.6 (image 1 at 0.65 passes)
    loss, rate = fixmatch_loss(weak, strong, threshold=torch.tensor([0.9, 0.6]))
    assert rate.item() == 0.5 and loss.item() == pytest.approx(math.log(2) / 2)
    aligned = torch.tensor([[0.95, 0.05], [0.5, 0.5]])
    loss, rate = fixmatch_loss(weak, strong, threshold=0.9, weak_probs=aligned)
    assert rate.item() == 0.5  # the aligned probabilities decide, not the logits
    with pytest.raises(ValueError, match="one per class"):
        fixmatch_loss(weak, strong, threshold=torch.tensor([0.5, 0.5, 0.5]))


def test_the_method_logs_the_pseudo_label_share_and_keeps_its_statistics():
    from test_method import W, batch

    from multimix.models import build_model

    torch.manual_seed(0)
    method = MultiMixMethod(threshold_mode="freematch", distribution_alignment="uniform")
    before = method.state_dict()["class_probs"].clone()
    _, logs = method.train_step(build_model("multimix", widths=W), batch())
    assert 0.0 <= logs["pseudo_normal"] <= 1.0 and "pass_rate" in logs
    assert not torch.equal(method.state_dict()["class_probs"], before)


def test_an_ema_teacher_needs_ema_weights():
    method = MultiMixMethod(teacher="ema")
    with pytest.raises(ValueError, match="train.ema_decay"):
        method.attach_teacher(None)
    with pytest.raises(ValueError, match="method.teacher"):
        MultiMixMethod(teacher="student")


class FixedTeacher(torch.nn.Module):
    """Always certain of class 0, whatever the image."""

    def classify(self, x):
        from multimix.models import TaskOutput

        return TaskOutput(cls_logits=torch.tensor([[9.0, -9.0]]).expand(x.shape[0], 2))


def test_pseudo_labels_come_from_the_attached_teacher():
    from test_method import W, batch

    from multimix.models import build_model

    torch.manual_seed(0)
    method = MultiMixMethod(teacher="ema", threshold=0.99)
    method.attach_teacher(FixedTeacher())
    _, logs = method.train_step(build_model("multimix", widths=W), batch())
    assert logs["pass_rate"] == 1.0 and logs["pseudo_normal"] == 1.0  # a random student is never this sure


def test_the_trainer_hands_over_its_ema_and_checkpoints_the_statistics(tmp_path):
    from multimix.utils.checkpoints import load_checkpoint

    from helpers import make_trainer, params

    def semi_batches(start_step):
        for step in range(start_step, 1000):
            g = torch.Generator().manual_seed(step)
            masks = (torch.rand(2, 1, 16, 16, generator=g) > 0.5).float()
            yield {
                "seg_x": masks,
                "seg_y": masks,
                "cls_x": torch.rand(2, 1, 16, 16, generator=g),
                "cls_y": torch.tensor([0, 1]),
                "cls_w": torch.rand(2, 1, 16, 16, generator=g),
                "cls_s": torch.rand(2, 1, 16, 16, generator=g),
            }

    def trainer(out, **kw):
        method = MultiMixMethod(
            seg_ssl=False, threshold_mode="freematch", distribution_alignment="uniform", teacher="ema"
        )
        built = make_trainer(out, steps=4, method=method, ema_decay=0.9, **kw)
        built.batches = semi_batches
        return built, method

    straight, method = trainer(tmp_path / "a")
    assert method.teacher_model is straight.ema.module
    straight.fit(progress=False)
    saved = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["method"]
    assert torch.equal(saved["class_probs"], method.state_dict()["class_probs"])
    # stop after 2 steps, resume: the statistics continue where they were, and so do the weights
    half, _ = trainer(tmp_path / "b")
    half.total_steps = 2
    half.fit(progress=False)
    resumed, resumed_method = trainer(tmp_path / "b")
    resumed.fit(resume=True, progress=False)
    assert torch.allclose(resumed_method.state_dict()["class_probs"], method.state_dict()["class_probs"], atol=1e-6)
    assert torch.allclose(params(resumed.model), params(straight.model), atol=1e-6)
