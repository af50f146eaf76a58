"""A user's own csv:/folder: data: used without --data-root, or refused in one line, never replaced
by the synthetic generator; one table may hold masks and labels, in train and cv alike."""

import json

import numpy as np
import pytest
from skimage import io as skio

from multimix.runs.cli import main

from helpers import tiny_cli_args


@pytest.fixture
def site(tmp_path):
    """One hospital table: 24 images of 12 patients, labels for all, lung masks for the first 12."""
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    lines = ["path,label,patient,mask"]
    for i in range(24):
        skio.imsave(tmp_path / "images" / f"x{i:02d}.png", (rng.random((40, 40)) * 255).astype(np.uint8))
        mask = ""
        if i < 12:
            lung = np.zeros((40, 40), np.uint8)
            lung[8:32, 6:18] = lung[8:32, 22:34] = 255
            skio.imsave(tmp_path / "masks" / f"x{i:02d}.png", lung, check_contrast=False)
            mask = f"masks/x{i:02d}.png"
        lines.append(f"images/x{i:02d}.png,{'pneumonia' if i % 3 else 'normal'},P{i // 2},{mask}")
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def _flags(tmp_path):
    return [*tiny_cli_args(), "--steps", "2", "--no-progress", "--set", f"real.cache_dir={tmp_path / 'cache'}"]


def test_csv_sources_without_a_data_root_train_on_the_csv(site, tmp_path, monkeypatch):
    monkeypatch.chdir(site)  # a relative table path, as a user types it
    out = tmp_path / "run"
    spec = "csv:labels.csv"
    status = main(
        ["train", "--seg-sources", spec, "--cls-sources", spec, "--seg-labels", "4", "--cls-labels", "6"]
        + _flags(tmp_path)
        + ["--out", str(out)]
    )
    assert status == 0
    config = (out / "config.yaml").read_text()
    assert "source: real" in config and f"csv:{site / 'labels.csv'}" in config  # absolute: found from anywhere
    split = json.loads((out / "split.json").read_text())
    uids = [*split["seg"]["labeled"], *split["cls"]["labeled"], *split["test"]]
    assert uids and all(uid.startswith("csv:labels/") for uid in uids)


def test_a_dataset_name_without_a_data_root_is_one_line_naming_what_is_missing(site, tmp_path, capsys):
    out = tmp_path / "run"
    status = main(["train", "--cls-sources", f"csv:{site / 'labels.csv'}"] + _flags(tmp_path) + ["--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1
    assert "jsrt" in err[0] and "--data-root" in err[0] and "--seg-sources" in err[0]
    assert not out.exists()


def test_cross_validation_of_one_table_holding_masks_and_labels(site, tmp_path):
    # with --data-root as the documentation's example has it (the folder holds no named dataset)
    spec = f"csv:{site / 'labels.csv'}"
    out = tmp_path / "cv"
    status = main(
        [
            "cv",
            "--folds",
            "2",
            "--data-root",
            str(site),
            "--seg-sources",
            spec,
            "--cls-sources",
            spec,
            "--seg-labels",
            "2",
            "--cls-labels",
            "4",
        ]
        + _flags(tmp_path)
        + ["--out", str(out)]
    )
    assert status == 0
    for k in range(2):
        split = json.loads((out / "splits" / f"fold{k}.json").read_text())
        trained = {
            *split["seg"]["labeled"],
            *split["seg"]["unlabeled"],
            *split["cls"]["labeled"],
            *split["cls"]["unlabeled"],
        }
        assert split["test"] and not set(split["test"]) & trained
        assert all(uid.startswith("csv:labels/") for uid in split["test"])
    assert (out / "cv_table.md").read_text().startswith("Written by `")
    made = json.loads((out / "cv_table.json").read_text())
    assert [r["fold"] for r in made["records"]] == [0, 1] and "in_domain/accuracy" in made["records"][0]
