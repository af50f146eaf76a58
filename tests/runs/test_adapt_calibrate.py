"""multimix adapt / calibrate: the operating point travels in a new checkpoint, and evaluate,
predict and the web app decide with it unless told another threshold."""

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest

from multimix.data.synthetic import generate_records
from multimix.metrics.operating_point import DegenerateOperatingPoint, OperatingPoint
from multimix.prediction import Predictor
from multimix.runs.cli import main as multimix
from multimix.runs.operating_point import adapt_checkpoint, source_prior
from multimix.utils.checkpoints import load_checkpoint


@pytest.fixture(scope="module")
def hospital(tmp_path_factory):
    """A folder of a new site's images, as a hospital would hand them over (PNG files)."""
    folder = tmp_path_factory.mktemp("hospital")
    for i, record in enumerate(generate_records(24, site="nih", image_size=32, seed=3)):
        iio.imwrite(folder / f"image{i:02d}.png", (record.image * 255).astype(np.uint8))
    return folder


def test_training_records_the_class_prior_the_posteriors_assume(trained_checkpoint):
    state = load_checkpoint(trained_checkpoint)
    prior = state["run"]["class_prior"]
    assert len(prior) == 2 and sum(prior) == pytest.approx(1.0)
    assert source_prior(state) == tuple(prior)
    assert source_prior({"model": {}}) == (0.5, 0.5)  # older checkpoints: balanced


@pytest.fixture
def ranked_scores(monkeypatch):
    """The scores of a model that ranks the hospital's images (two humps, 1 in 3 pneumonia): the
    two-step test model ranks nothing, and adapt refuses what it scores (next test)."""
    from multimix.runs import operating_point

    scoring = operating_point.pneumonia_probabilities

    def scores(predictor, files, **kwargs):
        _, used = scoring(predictor, files, **kwargs)
        z = np.where(np.arange(len(used)) % 3 == 0, 2.0, -2.0) + np.linspace(-1, 1, len(used))
        return 1 / (1 + np.exp(-z)), used

    monkeypatch.setattr(operating_point, "pneumonia_probabilities", scores)


@pytest.mark.parametrize("method", ["prior-em", "score-mixture"])
def test_adapt_writes_a_new_checkpoint_that_prediction_decides_with(
    trained_checkpoint, hospital, tmp_path, method, ranked_scores
):
    before = trained_checkpoint.read_bytes()
    out = tmp_path / "adapted.pt"
    point = adapt_checkpoint(trained_checkpoint, [str(hospital)], out, method=method, device="cpu", progress=False)
    assert trained_checkpoint.read_bytes() == before  # the input is never changed
    stored = OperatingPoint.from_checkpoint(load_checkpoint(out))
    assert stored == point and stored.method == method and stored.images == 24 and stored.fitted_on == str(hospital)
    predictor = Predictor(out, device="cpu")
    assert (
        predictor.operating_point == point and predictor.describe()["operating_point"]["threshold"] == point.threshold
    )
    prediction = predictor.predict([iio.imread(hospital / "image00.png") / 255.0])[0]
    assert prediction.threshold == point.threshold
    assert prediction.predicted_class == int(prediction.probabilities[1] >= point.threshold)
    assert Predictor(out, device="cpu", class_threshold=0.2).operating_point.threshold == 0.2


def test_adapt_refuses_a_model_that_calls_every_image_one_class_and_writes_nothing(
    trained_checkpoint, hospital, tmp_path, capsys
):
    out = tmp_path / "adapted.pt"
    with pytest.raises(DegenerateOperatingPoint, match="do not support a label-free threshold"):
        adapt_checkpoint(trained_checkpoint, [str(hospital)], out, device="cpu", progress=False)
    assert not out.exists()
    args = ["adapt", "--checkpoint", str(trained_checkpoint), "--images", str(hospital), "--out", str(out)]
    assert multimix([*args, "--device", "cpu", "--no-progress"]) == 1
    assert "pneumonia share of 1.000" in capsys.readouterr().err and not out.exists()
    few = tmp_path / "few"
    few.mkdir()
    for name in sorted(p.name for p in hospital.iterdir())[:5]:
        (few / name).write_bytes((hospital / name).read_bytes())
    with pytest.raises(DegenerateOperatingPoint, match="at least 20 images"):
        adapt_checkpoint(trained_checkpoint, [str(few)], out, method="score-mixture", device="cpu", progress=False)


def test_adapt_refuses_to_overwrite_its_input_and_names_empty_folders(trained_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="is this command.s input"):
        adapt_checkpoint(trained_checkpoint, [str(tmp_path)], trained_checkpoint, device="cpu", progress=False)
    with pytest.raises(ValueError, match="no image files found"):
        adapt_checkpoint(trained_checkpoint, [str(tmp_path)], tmp_path / "a.pt", device="cpu", progress=False)


def test_calibrate_chooses_on_labeled_images_and_evaluate_uses_it(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "calibrated.pt"
    assert (
        multimix(
            [
                "calibrate",
                "--checkpoint",
                str(trained_checkpoint),
                "--sources",
                "nih",
                "--out",
                str(out),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    point = OperatingPoint.from_checkpoint(load_checkpoint(out))
    assert point.method == "youden" and point.fitted_on == "nih" and point.images > 0
    assert f"threshold {point.threshold:.3f}" in printed and "sensitivity" in printed
    evaluation = tmp_path / "eval"
    assert (
        multimix(
            [
                "evaluate",
                "--checkpoint",
                str(out),
                "--domain",
                "cross",
                "--bootstrap",
                "10",
                "--out",
                str(evaluation),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    metrics = json.loads((evaluation / "metrics.json").read_text())
    assert metrics["models"][0]["operating_point"] == point.describe()
    assert metrics["models"][0]["domains"]["cross-domain"]["classification"]["threshold"] == point.threshold
    assert point.describe() in (evaluation / "report.md").read_text()
    # calibrate chose on the cross-domain images evaluate then scores: both say so
    cross = metrics["models"][0]["domains"]["cross-domain"]["classification"]
    assert cross["operating_point_fitted_images"] == point.images == len(point.image_ids)
    report = (evaluation / "report.md").read_text()
    assert f"chosen on {point.images} of these {cross['num_images']} images" in report
    assert "optimistic" in capsys.readouterr().err
    override = tmp_path / "eval2"
    assert (
        multimix(
            [
                "evaluate",
                "--checkpoint",
                str(out),
                "--domain",
                "cross",
                "--bootstrap",
                "10",
                "--threshold",
                "0.3",
                "--out",
                str(override),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        json.loads((override / "metrics.json").read_text())["models"][0]["domains"]["cross-domain"]["classification"][
            "threshold"
        ]
        == 0.3
    )
    assert (
        "operating_point_fitted_images"
        not in json.loads((override / "metrics.json").read_text())["models"][0]["domains"]["cross-domain"][
            "classification"
        ]
    )


def test_predict_writes_the_threshold_it_decided_with(trained_checkpoint, hospital, tmp_path, ranked_scores):
    adapted = tmp_path / "adapted.pt"
    point = adapt_checkpoint(trained_checkpoint, [str(hospital)], adapted, device="cpu", progress=False)
    out = tmp_path / "pred"
    assert (
        multimix(
            [
                "predict",
                str(hospital),
                "--checkpoint",
                str(adapted),
                "--out",
                str(out),
                "--device",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 24 and all(float(r["class_threshold"]) == pytest.approx(point.threshold) for r in rows)
    for row in rows:
        assert row["predicted_class"] == ("pneumonia" if float(row["p_pneumonia"]) >= point.threshold else "normal")
    assert (
        multimix(
            [
                "predict",
                str(hospital),
                "--checkpoint",
                str(adapted),
                "--out",
                str(tmp_path / "p2"),
                "--class-threshold",
                "1.5",
            ]
        )
        == 2
    )


def test_calibrate_names_a_source_without_labeled_images(trained_checkpoint, tmp_path, capsys):
    assert (
        multimix(
            ["calibrate", "--checkpoint", str(trained_checkpoint), "--sources", " ", "--out", str(tmp_path / "c.pt")]
        )
        != 0
    )
    assert "--sources names no source" in capsys.readouterr().err


def test_training_stores_the_calibration_of_its_best_checkpoint(tmp_path):
    from multimix.metrics.calibration import Calibration
    from multimix.runs.train import run_training

    from helpers import tiny_config

    out = tmp_path / "run"
    summary = run_training(tiny_config(train__steps=2, synthetic__val_per_site=8, train__out=str(out)), progress=False)
    stored = Calibration.from_checkpoint(load_checkpoint(out / "checkpoints" / "best.pt"))
    assert stored is not None and stored.fitted_on == "validation" and stored.images == 16
    assert summary["calibration"]["temperature"] == pytest.approx(stored.temperature)
    assert "fitted on the run's 16 labeled validation images" in (out / "MODEL_CARD.md").read_text()


def test_a_model_trained_on_synthetic_images_calibrates_on_a_hospital_folder(trained_checkpoint, tmp_path):
    # the folder is read from disk, not taken for the name of a synthetic site
    from skimage import io as skio

    rng = np.random.default_rng(0)
    for i in range(12):
        label = ("normal", "pneumonia")[i % 2]
        path = tmp_path / "site-b" / label / f"b{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        skio.imsave(path, (rng.random((40, 40)) * 255).astype(np.uint8), check_contrast=False)
    out = tmp_path / "c.pt"
    args = ["calibrate", "--checkpoint", str(trained_checkpoint), "--sources", f"folder:{tmp_path / 'site-b'}"]
    assert multimix([*args, "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    point = OperatingPoint.from_checkpoint(load_checkpoint(out))
    assert point.images == 12 and point.fitted_on == f"folder:{tmp_path / 'site-b'}"
