"""Domain-adversarial training: gradient reversal, the balanced domain loss, domains per stream."""

import math

import pytest
import torch
from test_method import W, batch

from multimix.losses import domain_adversarial_loss
from multimix.methods import MultiMixMethod
from multimix.models import build_model
from multimix.models.domain import reverse_gradient

from helpers import tiny_config


def test_gradient_reversal_is_identity_forward_and_negated_backward():
    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = reverse_gradient(x, 0.5)
    assert torch.equal(y, x)
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([-1.5, -2.0]))


def test_each_domain_weighs_half_of_the_loss():
    logits = torch.tensor([0.0, 0.0, 0.0, 2.0])
    domains = torch.tensor([0, 0, 0, 1])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    expected = 0.5 * bce(logits[:3], torch.zeros(3)) + 0.5 * bce(logits[3:], torch.ones(1))
    assert domain_adversarial_loss(logits, domains).item() == pytest.approx(expected.item())
    assert domain_adversarial_loss(torch.zeros(2), torch.zeros(2, dtype=torch.long)).item() == pytest.approx(
        math.log(2)
    )


def with_domains(data):
    b = data["seg_x"].shape[0]
    return {
        **data,
        "cls_x_domain": torch.zeros(b, dtype=torch.long),
        "cls_u_domain": torch.tensor([0, 1] * (b // 2)),
        "seg_x_domain": torch.ones(b, dtype=torch.long),
        "seg_u_domain": torch.ones(b, dtype=torch.long),
    }


def test_the_domain_term_trains_the_head_and_reverses_into_the_encoder():
    torch.manual_seed(0)
    model = build_model("multimix", widths=W, domain_head=True, dropout=0.0)
    method = MultiMixMethod(domain_weight=1.0)
    method.set_progress(50, 100)
    loss, logs = method.train_step(model, with_domains(batch()))
    assert "domain" in logs and method.reversal == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    loss.backward()
    head_grad = model.domain_head.net[0].weight.grad
    assert head_grad is not None and head_grad.abs().sum() > 0
    # only the domain term: the encoder's gradient is the head's pull, reversed and scaled
    model.zero_grad()
    embedding = model.classify(batch()["cls_x"], return_embedding=True).embedding
    plain = model.domain_head.net(embedding)[:, 0].sum()
    (grad_plain,) = torch.autograd.grad(plain, model.encoder.stem.parameters().__next__())
    embedding = model.classify(batch()["cls_x"], return_embedding=True).embedding
    reversed_ = model.domain_head(embedding, 0.5).sum()
    (grad_reversed,) = torch.autograd.grad(reversed_, model.encoder.stem.parameters().__next__())
    assert torch.allclose(grad_reversed, -0.5 * grad_plain, atol=1e-6)


def test_without_weight_or_head_there_is_no_domain_term():
    torch.manual_seed(0)
    _, logs = MultiMixMethod(domain_weight=1.0).train_step(build_model("multimix", widths=W), batch())
    assert "domain" not in logs


def test_training_gives_every_stream_its_domains(tmp_path):
    from multimix.data.pools import build_pools
    from multimix.engine.distributed import DistributedContext
    from multimix.runs.wiring import make_split, step_batches, stream_records, training_domains

    cfg = tiny_config(method__domain_weight=0.1, data__unlabeled_sources="nih")
    pools = build_pools(cfg)
    split = make_split(cfg, pools, tmp_path / "split.json", resume=False)
    streams = stream_records(split, pools.by_uid(), ["seg_x", "seg_u", "cls_x", "cls_u"])
    assert training_domains(streams) == {"synthetic-chex": 0, "synthetic-jsrt": 1, "synthetic-nih": 1}
    step = step_batches(cfg, streams, DistributedContext(), 0)[0]
    assert step["seg_x_domain"].tolist() == [1, 1] and step["cls_x_domain"].tolist() == [0, 0]
    assert set(step["cls_u_domain"].tolist()) <= {0, 1} and step["cls_u_domain"].shape == (2,)


def test_a_short_run_with_the_adversary_trains_and_reloads(tmp_path):
    from multimix.models.factory import load_trained_model
    from multimix.runs.train import run_training

    cfg = tiny_config(
        method__domain_weight=0.1, model__cls_pooling="lung", train__steps=2, train__out=str(tmp_path / "r")
    )
    summary = run_training(cfg, progress=False)
    assert summary["steps"] == 2
    model, _ = load_trained_model(tmp_path / "r" / "checkpoints" / "best.pt")
    assert model.domain_head is not None and model.encoder.lung_gate is not None
