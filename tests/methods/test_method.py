import math

import pytest
import torch

from multimix.losses import dice_loss
from multimix.methods import MultiMixMethod
from multimix.models import build_model

W = (4, 8, 16)


def batch(b=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    masks = (torch.rand(b, 1, size, size, generator=g) > 0.5).float()
    return {
        "seg_x": masks * 0.8 + 0.1,
        "seg_y": masks,
        "seg_u": torch.rand(b, 1, size, size, generator=g),
        "cls_x": torch.rand(b, 1, size, size, generator=g),
        "cls_y": torch.tensor([0, 1] * (b // 2)),
        "cls_w": torch.rand(b, 1, size, size, generator=g),
        "cls_s": torch.rand(b, 1, size, size, generator=g),
    }


@pytest.mark.parametrize(
    "name, flags, terms",
    [
        ("multimix", {}, {"dice", "ce", "fixmatch", "kl"}),
        ("umtls", dict(cls_ssl=True, seg_ssl=False), {"dice", "ce", "fixmatch"}),
        ("umtl", dict(cls_ssl=False, seg_ssl=False), {"dice", "ce"}),
        ("unet", dict(cls_ssl=False, seg_ssl=False), {"dice"}),
        ("enc", dict(cls_ssl=True, seg_ssl=False), {"ce", "fixmatch"}),
    ],
)
def test_loss_terms_follow_model_and_flags(name, flags, terms):
    torch.manual_seed(0)
    method = MultiMixMethod(**flags, ssl_rampup_steps=0)  # the terms at full weight
    model = build_model(name, widths=W)
    keys = {"seg_x": ["seg_x", "seg_y"], "seg_u": ["seg_u"], "cls_x": ["cls_x", "cls_y"], "cls_u": ["cls_w", "cls_s"]}
    data = {k: batch()[k] for s in method.streams(model) for k in keys[s]}
    loss, logs = method.train_step(model, data)
    assert torch.isfinite(loss)
    assert terms <= set(logs) and not ({"dice", "ce", "fixmatch", "kl"} - terms) & set(logs)
    assert ("pass_rate" in logs) == ("fixmatch" in terms)
    expected = sum({"dice": 5.0, "ce": 1.0, "fixmatch": 0.25, "kl": 0.01}[t] * logs[t] for t in terms)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_classification_images_skip_the_decoder():
    model = build_model("multimix", widths=W)
    seen = []
    model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0][-1].shape[0]))
    MultiMixMethod().train_step(model, batch(b=2))
    assert seen == [4]  # seg_x + seg_u only, in one pass


def test_learning_happens_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("multimix", widths=W, dropout=0.0)
    method = MultiMixMethod()
    data = batch(b=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss, logs = method.train_step(model, data)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else logs
    assert logs["dice"] < 0.5 * first["dice"]
    assert logs["ce"] < 0.5 * first["ce"]
    model.eval()
    with torch.no_grad():
        assert dice_loss(model(data["seg_x"]).seg_logits, data["seg_y"]) < 0.3


def test_unsupervised_terms_ramp_in():
    method = MultiMixMethod(ssl_rampup_steps=100)
    ramps = []
    for step in (0, 50, 99, 100, 500):
        method.set_progress(step, 1000)
        ramps.append(method.ssl_ramp)
    assert ramps[0] == pytest.approx(0.006738, rel=1e-3)  # exp(-5)
    assert ramps[1] == pytest.approx(0.286505, rel=1e-3)  # exp(-5 * 0.25)
    assert ramps[0] < ramps[1] < ramps[2] < ramps[3] == ramps[4] == 1.0
    method.set_progress(0, 1000)
    torch.manual_seed(0)
    loss, logs = method.train_step(build_model("multimix", widths=W), batch())
    expected = 5.0 * logs["dice"] + logs["ce"] + ramps[0] * (0.25 * logs["fixmatch"] + 0.01 * logs["kl"])
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_lung_pooling_adds_the_lung_map_term_and_it_learns():
    from multimix.losses import lung_map_loss

    torch.manual_seed(0)
    model = build_model("multimix", widths=W, cls_pooling="lung", dropout=0.0)
    method = MultiMixMethod(lung_weight=2.0, ssl_rampup_steps=0)
    data = batch(b=2)
    data["seg_y"] = torch.zeros_like(data["seg_y"])
    data["seg_y"][..., :, :12] = 1.0  # a "lung" on the left: a map the gate can learn
    loss, logs = method.train_step(model, data)
    assert "lung" in logs
    expected = 5.0 * logs["dice"] + logs["ce"] + 0.25 * logs["fixmatch"] + 0.01 * logs["kl"] + 2.0 * logs["lung"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = logs["lung"]
    for _ in range(30):
        loss, logs = method.train_step(model, data)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert logs["lung"] < 0.5 * first
    # the target of a cell is its share of lung pixels
    masks = torch.zeros(1, 1, 4, 4)
    masks[..., :2, :] = 1.0
    masks[..., 2, :2] = 1.0
    logits = torch.zeros(1, 1, 2, 2)
    target = torch.tensor([[[[1.0, 1.0], [0.5, 0.0]]]])
    assert lung_map_loss(logits, masks).item() == pytest.approx(
        torch.nn.functional.binary_cross_entropy_with_logits(logits, target).item()
    )


def test_mask_self_training_targets_the_teachers_cleaned_masks():
    from multimix.models.postprocess import clean_lung_masks

    torch.manual_seed(2)  # an untrained decoder whose lung map does not cover the whole image
    model = build_model("multimix", widths=W, dropout=0.0)
    method = MultiMixMethod(mask_pseudo_weight=2.0, ssl_rampup_steps=0)
    data = batch(b=2)
    loss, logs = method.train_step(model, data)
    model.eval()
    with torch.no_grad():
        teacher = (torch.sigmoid(model(data["seg_u"]).seg_logits) >= 0.5)[:, 0].numpy()
        student = model(torch.cat([data["seg_x"], data["seg_u"]])).seg_logits[2:]
    cleaned = clean_lung_masks(teacher, drop_edge_regions=True)  # the air at the side edges is never a target
    assert (cleaned != clean_lung_masks(teacher)).any()
    targets = torch.from_numpy(cleaned[:, None].astype("float32"))
    keep = targets.flatten(1).any(dim=1)
    assert keep.any()  # an untrained decoder marks something as lung
    assert logs["mask_pseudo"] == pytest.approx(dice_loss(student[keep], targets[keep]).item(), rel=1e-4)
    expected = 5.0 * logs["dice"] + logs["ce"] + 0.25 * logs["fixmatch"] + 0.01 * logs["kl"] + 2.0 * logs["mask_pseudo"]
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    model.train()  # train_step gives the model back in the mode it found it
    method.train_step(model, data)
    assert model.training


def test_supervised_warmup_trains_labeled_losses_alone_then_ramps_from_its_end():
    torch.manual_seed(0)
    model = build_model("multimix", widths=W, domain_head=True)
    method = MultiMixMethod(supervised_warmup_steps=100, ssl_rampup_steps=50, domain_weight=1.0)
    seen = []
    model.decoder.register_forward_hook(lambda m, inp, out: seen.append(inp[0][-1].shape[0]))
    data = batch(b=2)
    method.set_progress(99, 1000)
    loss, logs = method.train_step(model, data)
    assert set(logs) & {"fixmatch", "kl", "domain", "pass_rate"} == set()
    assert seen == [2]  # the unlabeled segmentation images are not even computed
    assert loss.item() == pytest.approx(5.0 * logs["dice"] + logs["ce"], rel=1e-5)
    loss.backward()  # every parameter is in the graph (DistributedDataParallel needs it), the head's gradient is 0
    assert all(p.grad is not None and not p.grad.any() for p in model.domain_head.parameters())
    ramps = []
    for step in (99, 100, 125, 150):
        method.set_progress(step, 1000)
        ramps.append((method.ssl_ramp, method.reversal))
    assert ramps[0] == (0.0, 0.0) and ramps[1][1] == 0.0
    assert ramps[1][0] == pytest.approx(0.006738, rel=1e-3)  # exp(-5): the ramp starts at the warm-up's end
    assert ramps[3][0] == 1.0
    # DANN: 2 / (1 + exp(-10 p)) - 1 with p counted from the warm-up's end
    assert ramps[3][1] == pytest.approx(2 / (1 + math.exp(-10 * 50 / 900)) - 1)
    method.set_progress(100, 1000)
    _, logs = method.train_step(
        model,
        {
            **data,
            **{
                k: torch.zeros(2, dtype=torch.long)
                for k in ("cls_x_domain", "cls_u_domain", "seg_x_domain", "seg_u_domain")
            },
        },
    )
    assert {"fixmatch", "kl", "domain", "pass_rate"} <= set(logs)
