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
        "seg_x": masks * 0.8 + 0.1, "seg_y": masks, "seg_u": torch.rand(b, 1, size, size, generator=g),
        "cls_x": torch.rand(b, 1, size, size, generator=g), "cls_y": torch.tensor([0, 1] * (b // 2)),
        "cls_w": torch.rand(b, 1, size, size, generator=g), "cls_s": torch.rand(b, 1, size, size, generator=g),
    }


@pytest.mark.parametrize("name, flags, terms", [
    ("multimix", {}, {"dice", "ce", "fixmatch", "kl"}),
    ("umtls", dict(cls_ssl=True, seg_ssl=False), {"dice", "ce", "fixmatch"}),
    ("umtl", dict(cls_ssl=False, seg_ssl=False), {"dice", "ce"}),
    ("unet", dict(cls_ssl=False, seg_ssl=False), {"dice"}),
    ("enc", dict(cls_ssl=True, seg_ssl=False), {"ce", "fixmatch"}),
])
def test_loss_terms_follow_model_and_flags(name, flags, terms):
    torch.manual_seed(0)
    method = MultiMixMethod(**flags)
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
