"""The preprocessing is a public contract: the export's JSON carries every step as parameters,
and a numpy-only re-implementation of that JSON (examples/preprocess_without_multimix.py) feeds
the exported ONNX graph to the class probabilities `multimix predict` gives, within 1e-5."""

import importlib.util
import json

import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.io import imsave

from multimix.data.dicom import COLOUR_LUMINANCE
from multimix.data.pixels import READ_WINDOW_PERCENTILES
from multimix.data.synthetic import generate_arrays
from multimix.prediction import Predictor
from multimix.prediction.preprocess import RASTER_LUMINANCE, preprocessing_steps
from multimix.runs.cli import main as multimix

from helpers import REPO_ROOT

FLOAT16_STEP = 2.0**-11  # the spacing of float16 in [0.5, 1): one rounding apart at most


def example():
    path = REPO_ROOT / "examples" / "preprocess_without_multimix.py"
    spec = importlib.util.spec_from_file_location("preprocess_without_multimix", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """Grey PNGs of sizes that down- and up-sample by factors that are no whole numbers."""
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(3)
    images, _, _ = generate_arrays(3, image_size=96, seed=5)
    paths = []
    for k, (height, width, bits) in enumerate([(211, 173, 16), (96, 130, 8), (23, 29, 16)]):
        from skimage.transform import resize

        grey = np.clip(
            resize(images[k].astype(np.float64), (height, width)) + rng.normal(0, 0.02, (height, width)), 0, 1
        )
        dtype = np.uint16 if bits == 16 else np.uint8
        path = folder / f"xray{k}.png"
        imsave(path, (grey * np.iinfo(dtype).max).round().astype(dtype), check_contrast=False)
        paths.append(path)
    return paths


@pytest.mark.parametrize("intensity", ["none", "window"])
def test_the_numpy_reimplementation_of_the_json_feeds_onnx_as_predict_does(
    trained_checkpoint, tmp_path, pngs, intensity
):
    onnxruntime = pytest.importorskip("onnxruntime")
    checkpoint = trained_checkpoint
    if intensity != "none":  # the same weights, told to standardise like a `window` run
        import torch

        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state["run"]["config"]["data"]["intensity"] = intensity
        checkpoint = tmp_path / "window.pt"
        torch.save(state, checkpoint)
    graph = tmp_path / "model.onnx"
    assert multimix(["export", "--checkpoint", str(checkpoint), "--format", "onnx", "--out", str(graph)]) == 0
    description = json.loads((tmp_path / "model.onnx.json").read_text())
    steps = description["input"]["preprocessing"]
    assert [step["step"] for step in steps["steps"]] == ["read", "resize", "round", "intensity"]
    assert steps["steps"][3]["mode"] == intensity

    numpy_only = example()
    predictor = Predictor(checkpoint, device="cpu")
    session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    for path in pngs:
        ours = numpy_only.network_input(numpy_only.read_grey_png(path), steps)
        theirs = predictor.preprocess(path).numpy()[None]
        assert ours.shape == theirs.shape == tuple(steps["input"]["shape"]) and ours.dtype == np.float32
        # float32 sums in another order may round a pixel to the neighbouring float16, never further
        gap = np.abs(ours - theirs)
        assert gap.max() <= FLOAT16_STEP and gap.mean() < 1e-5, (path.name, gap.max(), gap.mean())
        probabilities = session.run(["class_probs"], {"image": ours})[0][0]
        predicted = predictor.predict([path])[0].probabilities
        np.testing.assert_allclose(probabilities, predicted, atol=1e-5)


def test_the_example_prints_a_call_per_image(trained_checkpoint, tmp_path, pngs, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    graph = tmp_path / "model.onnx"
    assert multimix(["export", "--checkpoint", str(trained_checkpoint), "--format", "onnx", "--out", str(graph)]) == 0
    monkeypatch.setattr("sys.argv", ["example", "--graph", str(graph), *map(str, pngs)])
    example().main()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(pngs[0].parent))]
    assert len(lines) == len(pngs)
    assert all(line.startswith(f"{path}: ") and "threshold 0.500" in line for line, path in zip(lines, pngs))


def test_the_steps_name_the_rules_the_readers_use():
    read, resize, rounding, intensity = preprocessing_steps(64, "clahe")["steps"]
    np.testing.assert_allclose(rgb2gray(np.eye(3)[None])[0], read["raster"]["colour"]["luminance_weights_rgb"])
    assert tuple(read["raster"]["colour"]["luminance_weights_rgb"]) == RASTER_LUMINANCE
    assert tuple(read["dicom"]["colour"]["luminance_weights_rgb"]) == COLOUR_LUMINANCE
    assert tuple(read["jsrt_raw"]["window_percentiles"]) == READ_WINDOW_PERCENTILES
    assert resize["size"] == [64, 64] and rounding["dtype"] == "float16"
    assert intensity["mode"] == "clahe" and intensity["clahe"]["clip_limit"] > 0
    with pytest.raises(ValueError, match="needs its library"):
        example().network_input(np.zeros((40, 40)), preprocessing_steps(32, "clahe"))
