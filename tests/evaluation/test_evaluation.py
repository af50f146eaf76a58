import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from multimix.config.presets import preset_overrides
from multimix.data.records import Record
from multimix.evaluation.inference import eval_spacing, infer
from multimix.evaluation.report import paper_table, table_rows, write_report
from multimix.evaluation.results import EvaluationSettings
from multimix.evaluation.summary import BootstrapSettings
from multimix.metrics import classification_metrics, dice_per_image, segmentation_metrics_per_image
from multimix.runs.evaluate import evaluate_checkpoints
from multimix.runs.folder import run_folder
from multimix.runs.train import run_training

from helpers import REPO_ROOT, tiny_config

ROOT = REPO_ROOT
FAST = EvaluationSettings(device="cpu", boot=BootstrapSettings(n_resamples=50), progress=False, num_samples=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two tiny trained runs: MultiMix and the segmentation-only U-Net."""
    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for name in ("multimix", "unet"):
        cfg = tiny_config(
            **{k.replace(".", "__"): v for k, v in preset_overrides(name).items()},
            train__steps=2,
            train__out=str(root / name),
        )
        run_training(cfg, progress=False)
        paths[name] = root / name / "checkpoints" / "best.pt"
    return paths


@pytest.fixture(scope="module")
def evaluated(runs):
    return evaluate_checkpoints([runs["multimix"], runs["unet"]], FAST)


def test_each_checkpoint_is_evaluated_on_its_own_test_and_cross_sets(runs, evaluated):
    multimix, unet = evaluated
    assert [r.model_name for r in evaluated] == ["MultiMix", "U-Net"]
    split = json.loads((run_folder(runs["multimix"]) / "split.json").read_text())
    assert multimix.domains["in-domain"].results.uids == split["test"]
    assert multimix.domains["cross-domain"].results.uids == split["cross"]
    assert set(multimix.domains["in-domain"].summary) == {"num_images", "classification", "segmentation"}
    assert "classification" not in unet.domains["in-domain"].summary  # no class head, no classification metrics


def test_summary_agrees_with_the_per_image_values(evaluated):
    domain = evaluated[0].domains["in-domain"]
    res, summary = domain.results, domain.summary
    masked = res.has_mask
    dice = summary["segmentation"]["metrics"]["dice"]
    assert dice["mean"] == pytest.approx(res.seg["dice"][masked].mean())
    assert dice["ci"][0] <= dice["mean"] <= dice["ci"][1]
    labeled = res.labels >= 0
    expected = classification_metrics(res.prob_pneumonia[labeled], res.labels[labeled])
    accuracy = summary["classification"]["metrics"]["accuracy"]
    assert accuracy["value"] == pytest.approx(expected["accuracy"])
    assert summary["classification"]["confusion_matrix"] == expected["confusion_matrix"]
    for name in ("dice", "jaccard", "ssim", "hd", "hd95", "precision", "recall"):
        values = res.seg[name]
        assert not np.isnan(values[masked]).any() and np.isnan(values[~masked]).all(), name


def test_kept_samples_reproduce_the_per_image_metrics(evaluated):
    res = evaluated[0].domains["in-domain"].results
    assert len(res.samples) == 2
    for i, sample in res.samples.items():
        assert sample.image.shape == sample.prediction.shape == sample.reference.shape == (32, 32)
        assert sample.saliency.min() >= 0 and sample.saliency.max() <= 1
        full = segmentation_metrics_per_image(sample.prediction[None], sample.reference[None])
        for name, value in full.items():
            assert res.seg[name][i] == pytest.approx(value[0]), name


def test_figure_samples_are_the_same_images_for_every_model(evaluated):
    multimix, unet = evaluated

    def pick(r):
        return sorted(r.domains["in-domain"].results.uids[i] for i in r.domains["in-domain"].results.samples)

    assert pick(multimix) == pick(unet)


def test_report_files(tmp_path, evaluated):
    report = write_report(evaluated, tmp_path, FAST)
    text = report.read_text()
    assert "## Results" in text and "in-domain DS" in text and "cross-domain Acc" in text
    assert "empty predicted mask" in text  # the empty-mask rule is stated
    for link in [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]:
        assert (tmp_path / link).stat().st_size > 1000, link
    assert (tmp_path / "figures" / "dice_boxplot.png").exists()
    assert (tmp_path / "figures" / "boundaries_in-domain.png").exists()
    rows = list(csv.DictReader((tmp_path / "per_image.csv").open()))
    expected_rows = sum(len(d.results) for r in evaluated for d in r.domains.values())
    assert len(rows) == expected_rows
    multimix_in = [r for r in rows if r["model"] == "MultiMix" and r["domain"] == "in-domain" and r["label"]]
    accuracy = np.mean([int(r["correct"]) for r in multimix_in])
    data = json.loads((tmp_path / "metrics.json").read_text())
    reported = data["models"][0]["domains"]["in-domain"]["classification"]["metrics"]["accuracy"]["value"]
    assert reported == pytest.approx(accuracy)
    block = data["models"][0]["domains"]["in-domain"]["classification"]
    labels = [int(r["label"]) for r in multimix_in]
    assert block["majority_accuracy"] == pytest.approx(max(labels.count(0), labels.count(1)) / len(labels))
    assert "| Majority |" in text
    # a two-step model ranks nothing: the report says so in words, per model and domain
    low = block["metrics"]["auroc"]["ci"][0]
    assert block["ranks"] is (low > 0.5 and block["metrics"]["recall"]["value"] >= 0.5)
    assert ("**MultiMix**: the model does not rank these images" in text) is (block["ranks"] is False)


def test_paper_table_marks_the_best_value_per_column(evaluated):
    table = paper_table(table_rows(evaluated))
    multimix_row, unet_row = table.splitlines()[2:4]
    # only MultiMix classifies, so it holds the best accuracy; HD is lower-is-better
    assert multimix_row.split("|")[4].strip().startswith("**")
    assert "-" == unet_row.split("|")[4].strip()


def test_explicit_sources_exclude_nothing_trained_and_name_the_set(runs):
    settings = EvaluationSettings(
        device="cpu", sources=("shenzhen",), boot=BootstrapSettings(n_resamples=20), progress=False
    )
    (result,) = evaluate_checkpoints([runs["multimix"]], settings)
    assert list(result.domains) == ["sources"]
    assert {s for s in result.domains["sources"].results.sources} == {"synthetic-shenzhen"}


def test_evaluate_script_writes_and_prints_the_tables(tmp_path, runs):
    out = tmp_path / "eval"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/evaluate.py",
            "--checkpoint",
            str(runs["multimix"]),
            "--out",
            str(out),
            "--bootstrap",
            "50",
            "--device",
            "cpu",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "in-domain" in proc.stdout and "cross-domain" in proc.stdout
    for name in ("metrics.json", "per_image.csv", "table.csv", "report.md"):
        assert (out / name).exists(), name


def test_evaluate_script_names_a_missing_checkpoint(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--checkpoint", str(tmp_path / "nope.pt")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1 and "nope.pt" in proc.stderr


def test_infer_dice_only_mode_matches_the_full_metrics(runs, evaluated):
    from multimix.models.factory import load_trained_model

    model, cfg = load_trained_model(runs["multimix"])
    domain = evaluated[0].domains["cross-domain"]
    quick = infer(model, domain.records, image_size=32, full_metrics=False)
    assert set(quick.seg) == {"dice"}
    np.testing.assert_allclose(quick.seg["dice"], domain.results.seg["dice"])


def test_eval_spacing_from_field_of_view_or_pixel_size():
    jsrt = Record("a", "jsrt", meta={"field_of_view_mm": (358.4, 358.4)})
    assert eval_spacing(jsrt, 256) == pytest.approx((1.4, 1.4))
    montgomery = Record("b", "montgomery", meta={"pixel_spacing_mm": (0.0875, 0.0875), "original_shape": (4020, 4892)})
    assert eval_spacing(montgomery, 64) == pytest.approx((0.0875 * 4020 / 64, 0.0875 * 4892 / 64))
    assert eval_spacing(Record("c", "chex"), 64) is None
    assert eval_spacing(Record("d", "montgomery", meta={"pixel_spacing_mm": (0.1, 0.1)}), 64) is None  # shape unknown


def test_mm_distances_scale_the_pixel_distances():
    pred = np.zeros((1, 16, 16), bool)
    pred[0, 4:10, 4:10] = True
    ref = np.roll(pred, 2, axis=2)
    metrics = segmentation_metrics_per_image(pred, ref, spacing=np.array([[0.5, 0.5]]))
    assert metrics["hd_mm"][0] == pytest.approx(0.5 * metrics["hd"][0])
    assert dice_per_image(pred, ref)[0] == pytest.approx(metrics["dice"][0])


def test_a_checkpoint_without_its_split_file_gets_the_split_rebuilt(tmp_path, runs, evaluated, capsys):
    import shutil

    lone = tmp_path / "copied" / "checkpoints" / "best.pt"
    lone.parent.mkdir(parents=True)
    shutil.copy(runs["multimix"], lone)
    (result,) = evaluate_checkpoints([lone], FAST)
    assert "rebuilding the split" in capsys.readouterr().err
    assert result.domains["in-domain"].results.uids == evaluated[0].domains["in-domain"].results.uids


def test_batches_without_any_mask_keep_every_metric_column_aligned(runs):
    from multimix.data.synthetic import generate_records
    from multimix.models.factory import load_trained_model

    model, _ = load_trained_model(runs["multimix"])
    records = generate_records(6, site="chex", image_size=32, seed=3)
    for r in records[:3]:
        r.mask = None  # the first batch (of 3) has no reference mask at all
    res = infer(model, records, image_size=32, batch_size=3)
    for name, values in res.seg.items():
        assert values.shape == (6,), name
        assert np.isnan(values[:3]).all() and not np.isnan(values[3:]).any(), name


@pytest.mark.parametrize("name", ["umtls", "multimix"])
def test_flip_averaging_gives_a_mirror_image_the_mirrored_prediction(name):
    import torch

    from multimix.evaluation.inference import flip_averaged, output_probabilities
    from multimix.models import build_model

    torch.manual_seed(0)
    model = build_model(name, widths=(4, 8)).eval()
    images = torch.rand(2, 1, 32, 32)
    cls, seg = flip_averaged(model, images)
    cls_mirror, seg_mirror = flip_averaged(model, images.flip(-1))
    torch.testing.assert_close(cls, cls_mirror, atol=1e-5, rtol=0)
    torch.testing.assert_close(seg, seg_mirror.flip(-1), atol=1e-5, rtol=0)
    plain_cls, plain_seg = output_probabilities(model(images))
    mirror_cls = output_probabilities(model(images.flip(-1)))[0]
    assert not torch.allclose(plain_cls, mirror_cls), "the network alone is not mirror-symmetric"
    torch.testing.assert_close(cls, (plain_cls + mirror_cls) / 2)
    assert seg.shape == plain_seg.shape == (2, 1, 32, 32)
