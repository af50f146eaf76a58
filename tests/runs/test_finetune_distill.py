"""Stages 2 and 3 of the SimCLRv2 route: the classifier, its methods, and the two CLIs end to end."""

import copy
import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from multimix.methods import DistillationMethod, FineTuneMethod
from multimix.models import BarlowProjector, ProjectionHead, SSLModel, build_backbone
from multimix.models.classifier import (
    SSLClassifier,
    build_classifier,
    classifier_architecture,
    classifier_on,
    projection_layers,
)
from multimix.models.factory import load_trained_model
from multimix.runs.distill import student_architecture
from multimix.runs.pretrain import load_pretrained_ssl, pretrain_architecture, run_pretraining
from multimix.utils.checkpoints import load_checkpoint

from helpers import REPO_ROOT, tiny_cli_args, tiny_config

ROOT = REPO_ROOT


def _ssl_model(head: str = "simclr") -> SSLModel:
    backbone = build_backbone("unet", widths=(4, 8, 16), dropout=0.0)
    projector = ProjectionHead(16, out_dim=12, depth=3) if head == "simclr" else BarlowProjector(16, hidden_dims=(20,))
    return SSLModel(backbone, projector)


@pytest.mark.parametrize("from_layer, dim", [(0, 16), (1, 16), (2, 16), (3, 12)])
def test_classifier_keeps_the_first_projection_layers(from_layer, dim):
    ssl = _ssl_model()
    model = classifier_on(ssl, from_layer, num_classes=3)
    assert len(model.projection) == from_layer and model.classifier.in_features == dim
    assert model.backbone is ssl.backbone  # the pretrained weights themselves, not a copy
    out = model(torch.rand(2, 1, 32, 32), return_features=True)
    assert out.cls_logits.shape == (2, 3) and out.embedding.shape == (2, 16) and out.seg_logits is None


def test_from_layer_beyond_the_head_is_an_error():
    with pytest.raises(ValueError, match=r"from_layer must be in 0\.\.3"):
        classifier_on(_ssl_model(), 4, num_classes=2)


def test_barlow_projector_layers_can_be_kept_too():
    layers, dim = projection_layers(_ssl_model("barlow").head, 1)
    assert dim == 20 and len(layers) == 1


def test_classifier_rebuilds_from_its_architecture():
    arch = pretrain_architecture(tiny_config())
    model = build_classifier(classifier_architecture(arch, 1, 2, name="x"))
    again = build_classifier(json.loads(json.dumps(classifier_architecture(arch, 1, 2, name="x"))))
    again.load_state_dict(model.state_dict())  # strict: same names and shapes
    assert again.name == "x" and again.has_cls_head and not again.has_seg_head


def test_student_is_half_as_wide_by_default():
    cfg = tiny_config()  # model widths 4, 8, 16
    student = build_classifier(student_architecture(cfg))
    assert list(student.backbone.encoder.widths) == [2, 4, 8] and len(student.projection) == 0
    resnet = build_classifier(
        student_architecture(tiny_config(distill__backbone="resnet18", distill__width_multiplier=0.125))
    )
    assert resnet.classifier.in_features == 64


def test_classifier_saliency_is_a_normalised_map():
    model = classifier_on(_ssl_model(), 1, num_classes=2).eval()
    saliency = model.saliency(torch.rand(3, 1, 32, 32))
    assert (
        saliency.shape == (3, 1, 32, 32)
        and saliency.min() >= 0
        and saliency.amax(dim=(1, 2, 3)).allclose(torch.ones(3))
    )


def test_finetune_loss_is_the_class_weighted_cross_entropy():
    model = classifier_on(_ssl_model(), 1, num_classes=2)
    batch = {"cls_x": torch.rand(4, 1, 32, 32), "cls_y": torch.tensor([0, 1, 1, 1])}
    weights = torch.tensor([2.0, 0.5])
    torch.manual_seed(0)
    loss, logs = FineTuneMethod(class_weights=weights).train_step(model, batch)
    model.eval()  # same logits without BatchNorm's batch statistics changing: compare in eval mode
    loss, _ = FineTuneMethod(class_weights=weights).train_step(model, batch)
    logits = model.classify(batch["cls_x"]).cls_logits
    expected = F.cross_entropy(logits, batch["cls_y"], weight=weights)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5) and logs["images"] == 4


def _fit(method, model, batch, steps: int) -> tuple[float, float]:
    """Loss before and after ``steps`` Adam updates on one batch."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = method.train_step(model, batch)[0].item()
    for _ in range(steps):
        loss, _ = method.train_step(model, batch)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return first, loss.item()


def test_finetuning_fits_the_labeled_images():
    torch.manual_seed(0)
    model = classifier_on(_ssl_model(), 1, num_classes=2)
    images = torch.rand(8, 1, 32, 32)
    images[4:] += torch.linspace(0, 1, 32).view(1, 1, 1, 32)  # class 1: a left-right gradient
    batch = {"cls_x": images, "cls_y": torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])}
    first, last = _fit(FineTuneMethod(), model, batch, steps=30)
    assert last < 0.3 * first


def _student_and_teacher():
    torch.manual_seed(0)
    teacher = classifier_on(_ssl_model(), 0, num_classes=2)
    return copy.deepcopy(teacher), teacher


def test_distillation_is_zero_when_the_student_is_the_teacher():
    student, teacher = _student_and_teacher()
    method = DistillationMethod(teacher, temperature=2.0)
    student.eval()
    loss, logs = method.train_step(student, {"cls_w": torch.rand(4, 1, 32, 32)})
    assert loss.item() == pytest.approx(0.0, abs=1e-6) and logs["agreement"] == 1.0
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def test_distillation_adds_the_weighted_labeled_cross_entropy():
    student, teacher = _student_and_teacher()
    torch.nn.init.normal_(student.classifier.weight)  # disagree with the teacher
    student.eval()
    batch = {"cls_w": torch.rand(3, 1, 32, 32), "cls_x": torch.rand(2, 1, 32, 32), "cls_y": torch.tensor([1, 0])}
    loss, logs = DistillationMethod(teacher, temperature=3.0, labeled_weight=0.5).train_step(student, batch)
    s, t = student.classify(batch["cls_w"]).cls_logits, teacher.classify(batch["cls_w"]).cls_logits
    p = F.softmax(t / 3, dim=1)
    kl = 9 * (p * (p.log() - F.log_softmax(s / 3, dim=1))).sum(dim=1).mean()
    ce = F.cross_entropy(student.classify(batch["cls_x"]).cls_logits, batch["cls_y"])
    assert loss.item() == pytest.approx((kl + 0.5 * ce).item(), rel=1e-5) and logs["images"] == 5


def test_distillation_moves_the_student_towards_the_teacher_only():
    student, teacher = _student_and_teacher()
    torch.nn.init.normal_(student.classifier.weight, std=3.0)
    teacher_state = copy.deepcopy(teacher.state_dict())
    first, last = _fit(DistillationMethod(teacher), student, {"cls_w": torch.rand(6, 1, 32, 32)}, steps=20)
    assert last < 0.2 * first
    assert all(torch.equal(v, teacher_state[k]) for k, v in teacher.state_dict().items())


def test_distillation_temperature_must_be_positive():
    with pytest.raises(ValueError, match="temperature"):
        DistillationMethod(_student_and_teacher()[1], temperature=0.0)


# ----------------------------------------------------------------------------- CLIs end to end


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre") / "run"
    run_pretraining(tiny_config(train__steps=2, train__out=str(out), data__batch_size=4), progress=False)
    return out / "checkpoints" / "last.pt"


def _script(name: str, *args: str, last: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run a script on the tiny config; ``last`` comes after it, so its ``--set`` values win."""
    return subprocess.run(
        [sys.executable, f"scripts/{name}", *args, "--no-progress", *tiny_cli_args(), *last],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, pretrained):
    out = tmp_path_factory.mktemp("ft") / "run"
    proc = _script(
        "finetune.py",
        "--pretrained",
        str(pretrained),
        "--labels",
        "50%",
        "--class-weighted",
        "--steps",
        "2",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_finetune_cli_starts_from_the_pretrained_weights(finetuned, pretrained):
    summary = json.loads((finetuned / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["labeled_images"] == 12 and 0 <= summary["in_domain"]["accuracy"] <= 1
    split = json.loads((finetuned / "split.json").read_text())
    assert len(split["cls"]["labeled"]) == 12  # 50% of the 24-image pool
    model, cfg = load_trained_model(finetuned / "checkpoints" / "last.pt")
    assert (
        isinstance(model, SSLClassifier) and model.name == "SimCLR-FT (unet)" and cfg.method.class_weights == "balanced"
    )
    network = load_checkpoint(finetuned / "checkpoints" / "last.pt")["run"]["network"]
    assert network["class"] == "SSLClassifier" and network["kwargs"]["name"] == "SimCLR-FT (unet)"
    # two steps moved the backbone away from, but it still has the shape of, the pretrained one
    ssl, _ = load_pretrained_ssl(pretrained)
    assert model.backbone.state_dict().keys() == ssl.backbone.state_dict().keys()


def test_finetune_from_scratch_and_from_a_split_file(tmp_path, finetuned):
    split = finetuned / "split.json"
    proc = _script(
        "finetune.py", "--split", str(split), "--steps", "2", "--from-proj-layer", "0", "--out", str(tmp_path / "s")
    )
    assert proc.returncode == 0, proc.stderr
    assert "random weights" in proc.stdout
    assert json.loads((tmp_path / "s" / "split.json").read_text()) == json.loads(split.read_text())
    model, _ = load_trained_model(tmp_path / "s" / "checkpoints" / "best.pt")
    assert len(model.projection) == 0 and model.name == "Scratch-FT (unet)"


def test_finetune_resumes_where_it_stopped(tmp_path, pretrained):
    out = tmp_path / "r"
    assert (
        _script(
            "finetune.py", "--pretrained", str(pretrained), "--labels", "8", "--steps", "2", "--out", str(out)
        ).returncode
        == 0
    )
    proc = _script("finetune.py", "--out", str(out), "--resume", "--steps", "4")
    assert proc.returncode == 0, proc.stderr
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 4


def test_finetune_rejects_a_checkpoint_that_is_not_a_pretraining_one(tmp_path, finetuned):
    proc = _script(
        "finetune.py",
        "--pretrained",
        str(finetuned / "checkpoints" / "best.pt"),
        "--steps",
        "2",
        "--out",
        str(tmp_path / "x"),
    )
    assert proc.returncode == 1 and "not a pretraining checkpoint" in proc.stderr
    assert not (tmp_path / "x").exists()


def test_a_pretraining_checkpoint_is_not_a_trained_model(pretrained):
    with pytest.raises(ValueError, match="fine-tune it"):
        load_trained_model(pretrained)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory, finetuned):
    out = tmp_path_factory.mktemp("ds") / "run"
    proc = _script(
        "distill.py",
        "--teacher",
        str(finetuned / "checkpoints" / "best.pt"),
        "--labeled-weight",
        "0.5",
        "--temperature",
        "2",
        "--steps",
        "2",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    return out


def test_distill_cli_trains_a_smaller_student_on_the_teachers_split(distilled, finetuned):
    summary = json.loads((distilled / "summary.json").read_text())
    assert summary["student_parameters"] < summary["teacher_parameters"]
    assert set(summary["teacher"]) == {"checkpoint", "in_domain", "cross_domain"}
    assert json.loads((distilled / "split.json").read_text()) == json.loads((finetuned / "split.json").read_text())
    model, cfg = load_trained_model(distilled / "checkpoints" / "best.pt")
    assert model.name == "Student (unet 2-4-8)" and cfg.distill.temperature == 2.0
    logged = [json.loads(line) for line in (distilled / "metrics.jsonl").read_text().splitlines()]
    assert any("distill" in r and "ce" in r for r in logged)


def test_distill_needs_a_teacher_at_the_same_image_size(tmp_path, finetuned):
    proc = _script("distill.py", "--steps", "2", "--out", str(tmp_path / "a"))
    assert proc.returncode == 1 and "teacher checkpoint" in proc.stderr
    proc = _script(
        "distill.py",
        "--teacher",
        str(finetuned / "checkpoints" / "best.pt"),
        "--steps",
        "2",
        "--out",
        str(tmp_path / "b"),
        last=("--set", "data.image_size=64"),
    )
    assert proc.returncode == 1 and "trained at 32 px" in proc.stderr


def test_evaluate_and_select_labels_accept_stage_two_and_three_models(tmp_path, finetuned, distilled):
    checkpoints = [str(finetuned / "checkpoints" / "best.pt"), str(distilled / "checkpoints" / "best.pt")]
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/evaluate.py",
            "--checkpoint",
            *checkpoints,
            "--out",
            str(tmp_path / "e"),
            "--bootstrap",
            "50",
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SimCLR-FT (unet)" in proc.stdout and "Student (unet 2-4-8)" in proc.stdout
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/select_labels.py",
            "--checkpoint",
            checkpoints[0],
            "--k",
            "3",
            "--out",
            str(tmp_path / "round1.json"),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads((tmp_path / "round1.json").read_text())["cls"]["labeled"]) == 15


def test_finetuning_is_reproducible_from_its_seed(tmp_path):
    from multimix.runs.finetune import run_finetuning

    def final_weights(seed: int, name: str) -> dict[str, torch.Tensor]:
        cfg = tiny_config(train__steps=1, train__seed=seed, train__out=str(tmp_path / name), data__batch_size=4)
        run_finetuning(cfg, progress=False)
        return load_checkpoint(tmp_path / name / "checkpoints" / "last.pt")["model"]

    first, again, other = final_weights(0, "a"), final_weights(0, "b"), final_weights(1, "c")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["classifier.weight"], other["classifier.weight"])


def test_a_resnet_pretraining_fine_tunes_into_a_resnet_classifier(tmp_path):
    from multimix.runs.finetune import make_finetune_model

    out = tmp_path / "resnet"
    run_pretraining(
        tiny_config(
            ssl__backbone="resnet18",
            ssl__width_multiplier=0.125,
            train__steps=1,
            train__out=str(out),
            data__batch_size=4,
        ),
        progress=False,
    )
    model, arch = make_finetune_model(tiny_config(ssl__pretrained=str(out / "checkpoints" / "last.pt")))
    assert arch["backbone"] == "resnet18" and model.name == "SimCLR-FT (resnet18)"
    assert model.classifier.in_features == 64  # the first projection layer keeps the 64-d features
    pretrained = load_checkpoint(out / "checkpoints" / "last.pt")["model"]
    assert torch.equal(model.backbone.net.conv1.weight, pretrained["ssl.backbone.net.conv1.weight"])
    assert build_classifier(arch).state_dict().keys() == model.state_dict().keys()
