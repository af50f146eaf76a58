"""The development loop: variants file, scoring of a trained run, the table, skipping finished runs."""

import json

import numpy as np
import pytest

from multimix.evaluation.inference import ImageResults
from multimix.runs.devloop import (
    Variant,
    auroc_interval,
    broken_mask_share,
    format_report,
    format_table,
    load_variants,
    majority_accuracy,
    paired_differences,
    run_devloop,
    summary_table,
)

from helpers import TINY


def test_variants_file_order_selection_and_errors(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text("variants:\n  a: {}\n  b:\n    data.intensity: clahe\n")
    assert [v.name for v in load_variants(path)] == ["a", "b"]
    assert load_variants(path, ["b"]) == [Variant("b", {"data.intensity": "clahe"})]
    with pytest.raises(ValueError, match="no variant"):
        load_variants(path, ["c"])
    (tmp_path / "empty.yaml").write_text("other: 1\n")
    with pytest.raises(ValueError, match="variants"):
        load_variants(tmp_path / "empty.yaml")


def test_a_scoring_variant_reads_another_variants_runs_and_sets_inference_only(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(
        "variants:\n  a:\n    data.seg_zoom_out: 0.4\n"
        "  a+tta:\n    scores_of: a\n    inference.flip_tta: true\n"
        "  bad:\n    scores_of: a\n    train.steps: 5\n"
        "  chained:\n    scores_of: a+tta\n"
    )
    scored = load_variants(path, ["a+tta"])[0]
    assert scored == Variant(
        "a+tta", {"inference.flip_tta": True}, scores_of="a", trains_with={"data.seg_zoom_out": 0.4}
    )
    assert scored.trained_as == "a" and load_variants(path, ["a"])[0].trained_as == "a"
    with pytest.raises(ValueError, match="inference.. keys only"):
        load_variants(path, ["bad"])
    with pytest.raises(ValueError, match="must name a variant that trains"):
        load_variants(path, ["chained"])


def test_majority_accuracy_and_auroc_interval():
    assert majority_accuracy(np.array([1, 1, 0, 1])) == 0.75
    assert majority_accuracy(np.array([0, 0, 0])) == 1.0
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    ranked = auroc_interval(labels + rng.normal(0, 0.3, 200), labels, "cross")
    assert 0.95 < ranked["cross_auroc_low"] <= ranked["cross_auroc_high"] <= 1.0
    chance = auroc_interval(rng.random(200), labels, "cross")
    assert chance["cross_auroc_low"] < 0.5 < chance["cross_auroc_high"]
    assert auroc_interval(rng.random(5), np.ones(5), "cross") == {}  # one class: no AUROC, no interval
    # every resample of separated scores ranks perfectly (or perfectly wrongly): the interval is one point
    separated = np.where(labels == 1, 0.9, 0.1)
    assert auroc_interval(separated, labels, "x") == {"x_auroc_low": 1.0, "x_auroc_high": 1.0}
    assert auroc_interval(1 - separated, labels, "x") == {"x_auroc_low": 0.0, "x_auroc_high": 0.0}


def test_broken_masks_are_those_not_two_solid_regions():
    results = ImageResults(
        uids=["a", "b", "c", "d"],
        sources=["s"] * 4,
        labels=np.zeros(4),
        prob_pneumonia=None,
        has_mask=np.zeros(4, bool),
        pred_regions=np.array([2, 3, 2, 1]),
        pred_holes=np.array([0, 0, 1, 0]),
    )
    assert broken_mask_share(results) == 0.75


def test_table_lists_the_columns_any_row_has():
    table = format_table(
        [{"variant": "a", "cross_auroc": 0.5, "jsrt_dice": 0.91}, {"variant": "b", "cross_auroc": 0.75}]
    )
    lines = table.splitlines()
    assert lines[0] == "| variant | JSRT Dice | NIH AUROC |"
    assert lines[2] == "| a | 0.910 | 0.500 |" and lines[3] == "| b | - | 0.750 |"


def test_devloop_trains_every_seed_scores_and_skips_finished_runs(tmp_path):
    overrides = {**TINY, "data.seg_labels": "4", "data.cls_labels": "8", "train.steps": 2}
    variants = [Variant("plain", {}), Variant("clahe-lung", {"data.intensity": "clahe", "model.cls_pooling": "lung"})]
    flipped = Variant("plain+tta", {"inference.flip_tta": True}, scores_of="plain", trains_with={})
    rows = run_devloop(
        variants,
        tmp_path,
        base_config=None,
        overrides=overrides,
        seeds=[0, 1],
        baseline="plain",
        device="cpu",
        progress=False,
    )
    # seeds outer, variants inner: a grid stopped half-way already holds paired runs
    assert [(r["variant"], r["seed"]) for r in rows] == [
        ("plain", 0),
        ("clahe-lung", 0),
        ("plain", 1),
        ("clahe-lung", 1),
    ]
    for row in rows:
        assert 0 <= row["in_acc"] <= 1 and 0 <= row["cross_auroc"] <= 1 and 0 <= row["jsrt_dice"] <= 1
        assert 0 <= row["adults_normal"] <= 1 and 0 <= row["child_masks_broken"] <= 1
        assert 0 <= row["val_f1_normal_min"] <= 1
        assert row["jsrt_dice_clean"] is not None and row["train_minutes"] > 0
    saved = json.loads((tmp_path / "clahe-lung" / "seed1" / "dev_scores.json").read_text())
    assert saved["overrides"] == {"data.intensity": "clahe", "model.cls_pooling": "lung"} and saved["seed"] == 1
    # the seed reaches the run: its label draw differs
    draws = [json.loads((tmp_path / "plain" / f"seed{s}" / "split.json").read_text())["cls"]["labeled"] for s in (0, 1)]
    assert draws[0] != draws[1]
    table = (tmp_path / "table.md").read_text()
    assert "clahe-lung" in table and "vs plain" in table and (tmp_path / "child_masks.png").stat().st_size > 0
    stamp = (tmp_path / "plain" / "seed0" / "summary.json").stat().st_mtime_ns
    again = run_devloop(
        variants[:1], tmp_path, base_config=None, overrides=overrides, seeds=[0], device="cpu", progress=False
    )
    assert again[0] == rows[0] and (tmp_path / "plain" / "seed0" / "summary.json").stat().st_mtime_ns == stamp
    # a scoring variant re-scores plain's weights with its own inference settings and trains nothing
    scored = run_devloop(
        [flipped], tmp_path, base_config=None, overrides=overrides, seeds=[0], device="cpu", progress=False
    )[0]
    assert (tmp_path / "plain" / "seed0" / "summary.json").stat().st_mtime_ns == stamp
    assert (
        not (tmp_path / "plain+tta").exists() and (tmp_path / "plain" / "seed0" / "dev_scores-plain+tta.json").exists()
    )
    assert scored["variant"] == "plain+tta" and scored["overrides"] == {"inference.flip_tta": True}
    assert (
        scored["cross_auroc"] != rows[0]["cross_auroc"]
        or scored["in_acc"] != rows[0]["in_acc"]
        or scored["jsrt_dice"] != rows[0]["jsrt_dice"]
    ), "flip averaging changed no score at all"


def test_devloop_refuses_a_baseline_it_does_not_run(tmp_path):
    with pytest.raises(ValueError, match="baseline 'other'"):
        run_devloop([Variant("a", {})], tmp_path, base_config=None, overrides={}, baseline="other")


def test_table_only_reports_the_finished_runs_and_trains_nothing(tmp_path, monkeypatch):
    from multimix.runs import grid

    monkeypatch.setattr(grid, "run_training", lambda *a, **k: pytest.fail("--table-only must not train"))
    for variant, seed, auroc in (("a", 0, 0.6), ("b", 0, 0.7), ("a", 1, 0.65)):  # b seed 1 is still running
        run = tmp_path / variant / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text("{}")
        row = {"variant": variant, "seed": seed, "cross_auroc": auroc}
        (run / "dev_scores.json").write_text(json.dumps(row))
    (tmp_path / "b" / "seed1" / "checkpoints").mkdir(parents=True)
    variants = [Variant("a", {}), Variant("b", {})]
    rows = run_devloop(variants, tmp_path, base_config="real", overrides={}, seeds=[0, 1], baseline="a", train=False)
    assert [(r["variant"], r["seed"]) for r in rows] == [("a", 0), ("b", 0), ("a", 1)]
    assert "| b | 1 |" in (tmp_path / "table.md").read_text()  # one seed of b so far, and the table says so
    with pytest.raises(ValueError, match="no finished run"):
        run_devloop([Variant("c", {})], tmp_path, base_config="real", overrides={}, seeds=[0], train=False)


def test_a_baseline_recorded_by_an_earlier_grid_is_paired_without_training(tmp_path, monkeypatch):
    from multimix.runs import grid

    monkeypatch.setattr(grid, "run_training", lambda *a, **k: pytest.fail("--table-only must not train"))
    for seed, auroc in ((0, 0.70), (1, 0.75)):
        run = tmp_path / "new" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text("{}")
        (run / "dev_scores.json").write_text(json.dumps({"variant": "new", "seed": seed, "cross_auroc": auroc}))
    earlier = tmp_path / "earlier.json"
    made_by = {"command": "multimix devloop ...", "commit": "abc123", "date": "2026-12-07 20:20 UTC"}
    records = [{"variant": "base", "seed": k, "cross_auroc": a} for k, a in ((0, 0.60), (1, 0.70), (2, 0.65))]
    other = [{"variant": "new", "seed": 0}, {"variant": "third", "seed": 0}]  # only the baseline's rows are taken
    earlier.write_text(json.dumps({"made_by": made_by, "records": [*records, *other]}))
    rows = run_devloop(
        [Variant("new", {})],
        tmp_path,
        base_config="real",
        overrides={},
        seeds=[0, 1],
        baseline="base",
        train=False,
        recorded=earlier,
    )
    assert [(r["variant"], r["seed"]) for r in rows] == [("base", 0), ("base", 1), ("new", 0), ("new", 1)]
    table = (tmp_path / "table.md").read_text()
    assert f"Rows of base are recorded in {earlier} (abc123, 2026-12-07 20:20 UTC), not trained again." in table
    assert "| new | 2 | **+0.075 ± 0.035** |" in table  # paired seed by seed: +0.10 and +0.05
    with pytest.raises(ValueError, match="name a --baseline not run here"):
        run_devloop(
            [Variant("new", {})],
            tmp_path,
            base_config="real",
            overrides={},
            baseline="new",
            train=False,
            recorded=earlier,
        )
    with pytest.raises(ValueError, match="no recorded run of 'base' with seeds"):
        run_devloop(
            [Variant("new", {})],
            tmp_path,
            base_config="real",
            overrides={},
            seeds=[5],
            baseline="base",
            train=False,
            recorded=earlier,
        )
    with pytest.raises(ValueError, match="not a devloop result file"):
        run_devloop(
            [Variant("new", {})],
            tmp_path,
            base_config="real",
            overrides={},
            baseline="base",
            train=False,
            recorded=tmp_path / "new" / "seed0" / "summary.json",
        )


ROWS = [
    {"variant": "base", "seed": 0, "cross_auroc": 0.60, "val_f1_normal_min": 0.5},
    {"variant": "base", "seed": 1, "cross_auroc": 0.70, "val_f1_normal_min": 0.4},
    {"variant": "base", "seed": 2, "cross_auroc": 0.65, "val_f1_normal_min": 0.6},
    {"variant": "new", "seed": 0, "cross_auroc": 0.70, "val_f1_normal_min": 0.0},
    {"variant": "new", "seed": 1, "cross_auroc": 0.75, "val_f1_normal_min": 0.7},
    {"variant": "new", "seed": 2, "cross_auroc": 0.75, "val_f1_normal_min": 0.7},
]


def test_summary_gives_mean_and_sd_over_seeds_and_the_lowest_validation_f1():
    lines = summary_table(ROWS).splitlines()
    assert lines[0] == "| variant | seeds | NIH AUROC | val F1-N min |"
    # base: mean 0.65, sd 0.05 (ddof 1); the lowest F1-normal over seeds, not its mean
    assert lines[2] == "| base | 3 | 0.650 ± 0.050 | 0.400 |"
    assert lines[3] == "| new | 3 | 0.733 ± 0.029 | 0.000 |"


def test_paired_differences_are_taken_seed_by_seed():
    diffs = paired_differences(ROWS, "base")
    assert diffs["new"]["cross_auroc"] == pytest.approx([0.10, 0.05, 0.10])
    report = format_report(ROWS, "base")
    # mean 0.083, sd 0.029: a gain larger than its spread is bold
    assert "| new | 3 | **+0.083 ± 0.029** |" in report
    noisy = [dict(r) for r in ROWS]
    noisy[4]["cross_auroc"] = 0.60  # differences 0.10, -0.10, 0.10: mean 0.033, sd 0.115
    assert "| new | 3 | +0.033 ± 0.115 |" in format_report(noisy, "base")


def test_operating_points_are_chosen_on_one_half_and_scored_on_the_other():
    from multimix.data.records import Record
    from multimix.runs.devloop import held_out_operating_points, patient_halves

    records = [Record(uid=f"u{i}", source="nih", patient_id=f"p{i // 2}") for i in range(400)]
    halves = patient_halves(records)
    assert set(halves) == {0, 1} and all(
        halves[i] == halves[i + 1] for i in range(0, 400, 2)
    )  # a patient stays in one half
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 200)
    # a hospital every image of which the model finds pneumonia-like: p near 0.9, pneumonia a little higher
    probs = 1 / (1 + np.exp(-(2.5 + 1.5 * labels + rng.normal(0, 0.5, 400))))
    scores = held_out_operating_points(probs, labels, halves, (0.5, 0.5))
    assert scores["cross_acc_youden"] > 0.85 and scores["cross_f1_normal_youden"] > 0.85
    assert scores["cross_acc_score_mixture"] > 0.8
    # prior-shift EM believes the class mix changed and would call (nearly) everything pneumonia:
    # it refuses, so the table has no number for it rather than a degenerate one
    assert "cross_acc_prior_em" not in scores and "cross_f1_normal_prior_em" not in scores


def test_the_child_mask_figure_takes_variants_trained_at_other_sizes(tmp_path):
    from multimix.runs.devloop import child_mask_figure

    uids = np.array(["chex/a.png", "chex/b.png"])
    for name, size in (("small", 32), ("large", 48)):
        run = tmp_path / name / "seed0"
        run.mkdir(parents=True)
        masks = np.zeros((2, size, size), bool)
        masks[:, size // 4 : 3 * size // 4, size // 8 : size // 2] = True
        np.savez(run / "dev_samples.npz", uids=uids, images=np.random.rand(2, size, size), masks=masks)
    rows = [{"variant": "small", "seed": 0}, {"variant": "large", "seed": 0}]
    figure = child_mask_figure(rows, tmp_path, seed=0)
    assert figure is not None and figure.exists() and figure.stat().st_size > 0


@pytest.mark.parametrize("seeds", ["-1", "0,-5", "99999999999999999999"])
def test_bad_seeds_are_refused_before_anything_is_scanned_or_created(tmp_path, seeds, capsys):
    from multimix.runs.cli import main as multimix

    variants = tmp_path / "v.yaml"
    variants.write_text("variants:\n  v1: {}\n")
    out = tmp_path / "grid"
    args = ["devloop", "--data-root", str(tmp_path / "nowhere"), "--variants-file", str(variants)]
    assert multimix([*args, "--seeds", seeds, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "--seeds" in err and "between 0 and 4294967295" in err and not out.exists()


def test_a_training_seed_outside_numpys_range_is_refused_by_the_config():
    from multimix.config import load_config

    with pytest.raises(ValueError, match="train.seed must be between 0 and"):
        load_config(None, {"train.seed": -1})
