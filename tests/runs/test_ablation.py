import csv
import json
import subprocess
import sys

from multimix.evaluation.results import EvaluationSettings
from multimix.evaluation.summary import BootstrapSettings
from multimix.runs.ablation import grid, run_ablation

from helpers import REPO_ROOT, TINY

ROOT = REPO_ROOT
SETTINGS = EvaluationSettings(device="cpu", boot=BootstrapSettings(n_resamples=20), progress=False, num_samples=2)


def test_grid_runs_tabulates_over_seeds_and_skips_finished_runs(tmp_path):
    overrides = {**TINY, "train.steps": 2}
    cells = grid(["unet", "multimix"], ["4"], ["8"], [0, 1])
    report = run_ablation(cells, tmp_path, overrides=overrides, settings=SETTINGS, progress=False)
    rows = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert [(r["model"], r["seg_labels"], r["cls_labels"]) for r in rows] == [
        ("U-Net", "4", "-"),
        ("MultiMix", "4", "8"),
    ]
    multimix = rows[1]
    assert multimix["in-domain/accuracy/n"] == "2" and multimix["cross-domain/dice/n"] == "2"
    assert rows[0]["in-domain/accuracy/n"] == "0"  # U-Net does not classify
    table = (tmp_path / "table.md").read_text()
    assert "±" in table and "MultiMix" in table and table.startswith("Written by `")
    made = json.loads((tmp_path / "table.json").read_text())
    assert made["records"][1]["in-domain/accuracy/n"] == 2 and made["made_by"]["machine"]["cpu_count"] >= 1
    text = report.read_text()
    assert "dice_boxplot.png" in text and "boundaries_in-domain.png" in text
    summaries = sorted(tmp_path.glob("runs/*/summary.json"))
    assert len(summaries) == 4
    stamps = [p.stat().st_mtime_ns for p in summaries]
    run_ablation(cells, tmp_path, overrides=overrides, settings=SETTINGS, progress=False)
    assert [p.stat().st_mtime_ns for p in summaries] == stamps  # finished runs are not retrained


def test_ablation_script_rejects_an_unknown_model(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/ablation.py", "--models", "unet,vit", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1 and "vit" in proc.stderr
