import json
import math

import pytest
import torch

from multimix.config import TrainConfig
from multimix.engine.trainer import NonFiniteLossError, move_to
from multimix.methods import MultiMixMethod
from multimix.methods.optim import WarmupCosine
from multimix.utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from multimix.utils.precision import resolve_precision

from helpers import fixed_batches, make_trainer, params


def test_fit_writes_loadable_checkpoints_and_logs(tmp_path):
    result = make_trainer(tmp_path).fit(progress=False)
    assert result.steps == 6 and result.images_per_second > 0
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")  # weights_only=True inside
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert last["step"] == 6 and best["run"] == {"note": "test"} and "score" in best["metrics"]
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["phase"] == "val"] == [2, 4, 6]
    assert {"loss", "dice", "ce", "lr"} <= set(lines[0])
    assert list((tmp_path / "tb").iterdir())
    assert not list((tmp_path / "checkpoints").glob("*.tmp"))


def test_resume_continues_exactly(tmp_path):
    straight = make_trainer(tmp_path / "a", steps=6)
    straight.fit(progress=False)

    def crashing_batches(start_step):
        for _, batch in zip(range(start_step, 5), fixed_batches(start_step)):
            yield batch
        raise RuntimeError("simulated crash at step 5")

    first = make_trainer(tmp_path / "b", steps=6)
    first.batches = crashing_batches
    with pytest.raises(RuntimeError, match="simulated crash"):
        first.fit(progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 4
    second = make_trainer(tmp_path / "b", steps=6)
    second.fit(resume=True, progress=False)
    assert second.step == 6
    assert torch.allclose(params(second.model), params(straight.model), atol=1e-6)
    records = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["step"], r["phase"]) for r in records]
    assert len(keys) == len(set(keys)) == 9  # steps 1-6 + val at 2, 4, 6; the crashed step 5 logged once


class ExplodingMethod(MultiMixMethod):
    def train_step(self, model, batch):
        loss, logs = super().train_step(model, batch)
        self.calls = getattr(self, "calls", 0) + 1
        return (loss * float("nan") if self.calls == 5 else loss), logs


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, steps=10, method=ExplodingMethod(cls_ssl=False, seg_ssl=False))
    with pytest.raises(NonFiniteLossError, match="loss became nan at step 4.*last.pt"):
        trainer.fit(progress=False)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["step"] == 4


def test_ema_weights_are_evaluated_and_saved_as_best(tmp_path):
    trainer = make_trainer(tmp_path, steps=2, ema_decay=0.9)  # one validation, at the last step
    trainer.fit(progress=False)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    ema = trainer.ema.module.state_dict()
    assert not torch.equal(params(trainer.model), params(trainer.ema.module))
    assert best["step"] == 2
    assert all(torch.equal(best["model"][key], ema[key]) for key in ema)  # the EMA weights, not the model's


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(CheckpointError, match="cut.pt: cannot read"):
        load_checkpoint(tmp_path / "cut.pt")
    save_checkpoint({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a multimix checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_warmup_cosine_schedule():
    f = WarmupCosine(total_steps=10, warmup_steps=2, floor=0.0)
    assert f(0) == pytest.approx(0.5) and f(1) == pytest.approx(1.0) and f(2) == pytest.approx(1.0)
    assert f(6) == pytest.approx(0.5) and f(10) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown schedule"):
        WarmupCosine(10, schedule="step")


def test_bf16_autocast_on_cpu_trains(tmp_path):
    trainer = make_trainer(tmp_path, steps=2, precision="bf16")
    assert trainer.autocast_dtype == torch.bfloat16
    result = trainer.fit(progress=False)
    assert result.steps == 2
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())


def test_a_bf16_step_gives_a_finite_loss_close_to_fp32(tmp_path):
    batch = next(iter(fixed_batches(0)))
    losses = {}
    for precision in ("fp32", "bf16"):
        trainer = make_trainer(tmp_path / precision, precision=precision)
        losses[precision] = trainer.train_step(batch)["loss"]
    assert math.isfinite(losses["bf16"])
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_channels_last_computes_the_same_step(tmp_path):
    batch = next(iter(fixed_batches(0)))
    plain = make_trainer(tmp_path / "a").train_step(batch)["loss"]
    fast = make_trainer(tmp_path / "b", channels_last=True)
    assert fast.train_step(move_to(batch, fast.device, channels_last=True))["loss"] == pytest.approx(plain, rel=1e-5)


def test_precision_settings_are_checked(monkeypatch):
    import multimix.utils.precision as precision

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    # auto on a CPU follows the measurement, whatever CPU runs the test
    monkeypatch.setattr(precision, "bf16_is_fast", lambda device: False)
    assert resolve_precision("auto", cpu) is None and resolve_precision("fp32", cuda) is None
    monkeypatch.setattr(precision, "bf16_is_fast", lambda device: True)
    assert resolve_precision("auto", cpu) == torch.bfloat16
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("int8", cpu)


def test_the_method_chooses_the_optimiser_the_trainer_steps(tmp_path):
    method = MultiMixMethod(cls_ssl=False, seg_ssl=False, optimizer="sgd")
    trainer = make_trainer(tmp_path, steps=2, method=method)
    assert isinstance(trainer.optimizer, torch.optim.SGD) and trainer.optimizer.defaults["nesterov"]
    before = params(trainer.model).clone()
    trainer.fit(progress=False)
    assert not torch.equal(before, params(trainer.model))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        MultiMixMethod(optimizer="lbfgs").configure_optimizer(trainer.model, TrainConfig())


def test_checkpoints_record_the_precision_and_an_auto_resume_keeps_it(tmp_path, monkeypatch):
    import multimix.engine.trainer as trainer_module

    trainer = make_trainer(tmp_path, steps=4, precision="fp32")
    trainer.fit(progress=False)
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["precision"] == "fp32" and load_checkpoint(tmp_path / "checkpoints" / "best.pt")["precision"] == "fp32"
    # a busy CPU may measure bf16 as faster now: the resumed run still trains in what it started with
    monkeypatch.setattr(trainer_module, "resolve_precision", lambda precision, device: torch.bfloat16)
    resumed = make_trainer(tmp_path, steps=6, precision="auto")
    assert resumed.precision_name == "bf16"
    assert resumed.resume() and resumed.precision_name == "fp32"
