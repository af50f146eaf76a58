"""multimix export on a default run: the ONNX graph (run by onnxruntime) and the TorchScript graph
give the predictor's class probabilities and lung probabilities, saliency bridge inside."""

import json

import numpy as np
import pytest
import torch

from multimix.prediction.predictor import Predictor
from multimix.runs.cli import main as multimix
from multimix.runs.export import TOLERANCE
from multimix.runs.train import run_training

from helpers import tiny_config


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """A short run of the default network (widths 16-128) on the tiny synthetic data."""
    out = tmp_path_factory.mktemp("export") / "run"
    run_training(tiny_config(train__steps=2, train__out=str(out), model__widths="[16, 32, 64, 128]"), progress=False)
    return out


def images(predictor: Predictor) -> torch.Tensor:
    """Two preprocessed inputs, as `multimix predict` makes them."""
    rng = np.random.default_rng(0)
    raw = [rng.random((50, 40)).astype(np.float32), np.linspace(0, 1, 48 * 48, dtype=np.float32).reshape(48, 48)]
    return torch.stack([predictor.preprocess(image) for image in raw])


def reference(predictor: Predictor, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    out = predictor.model(batch)  # saliency through autograd
    return out.cls_logits.softmax(dim=1).detach().numpy(), out.seg_logits.sigmoid().detach().numpy()


def test_onnx_graph_gives_the_pytorch_outputs_in_onnxruntime(default_run, capsys):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    best = default_run / "checkpoints" / "best.pt"
    assert multimix(["export", "--checkpoint", str(best)]) == 0
    assert "largest difference to PyTorch" in capsys.readouterr().out
    graph = default_run / "export" / "model.onnx"
    predictor = Predictor(best, device="cpu")
    batch = images(predictor)
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    class_probs, lung_probs = session.run(["class_probs", "lung_probs"], {"image": batch.numpy()})
    expected_class, expected_lung = reference(predictor, batch)
    assert class_probs.shape == (2, 2) and lung_probs.shape == (2, 1, 32, 32)
    np.testing.assert_allclose(class_probs, expected_class, atol=TOLERANCE)
    np.testing.assert_allclose(lung_probs, expected_lung, atol=TOLERANCE)
    # the batch dimension is free
    (one,) = session.run(["class_probs"], {"image": batch[:1].numpy()})
    np.testing.assert_allclose(one, expected_class[:1], atol=TOLERANCE)
    description = json.loads((default_run / "export" / "model.onnx.json").read_text())
    assert description["outputs"]["class_probs"]["classes"] == ["normal", "pneumonia"]
    assert description["decision"]["operating_point"]["threshold"] == 0.5
    assert description["input"]["shape"] == ["N", 1, 32, 32]


@pytest.mark.filterwarnings("ignore::FutureWarning")  # TorchScript is deprecated in favour of torch.export
def test_torchscript_graph_gives_the_pytorch_outputs(default_run, tmp_path):
    best = default_run / "checkpoints" / "best.pt"
    assert (
        multimix(["export", "--checkpoint", str(best), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    )
    predictor = Predictor(best, device="cpu")
    batch = images(predictor)
    with torch.no_grad():
        class_probs, lung_probs = torch.jit.load(str(tmp_path / "m.pt"))(batch)
    expected_class, expected_lung = reference(predictor, batch)
    np.testing.assert_allclose(class_probs.numpy(), expected_class, atol=TOLERANCE)
    np.testing.assert_allclose(lung_probs.numpy(), expected_lung, atol=TOLERANCE)


def test_card_works_on_the_default_run(default_run, capsys):
    assert multimix(["card", "--checkpoint", str(default_run / "checkpoints" / "best.pt")]) == 0
    assert "normal" in (default_run / "MODEL_CARD.md").read_text()


def test_a_network_export_cannot_express_is_one_line(tmp_path, capsys):
    out = tmp_path / "lung"
    cfg = tiny_config(train__steps=1, train__out=str(out), model__cls_pooling="lung")
    run_training(cfg, progress=False)
    assert multimix(["export", "--checkpoint", str(out / "checkpoints" / "best.pt")]) == 1
    assert "cls_pooling 'lung'" in capsys.readouterr().err
