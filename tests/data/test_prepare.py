import subprocess
import sys

import pytest

from multimix.data.prepare import prepare_all

from helpers import REPO_ROOT

ROOT = REPO_ROOT
SHARED = ROOT.parent / "shared" / "data"
needs_samples = pytest.mark.skipif(
    not SHARED.is_dir(), reason="the shared real-data samples are not beside the checkout"
)


@needs_samples
def test_prepare_finds_validates_and_caches_the_shared_samples(tmp_path):
    first = prepare_all(SHARED, 64, tmp_path, progress=False)
    by_name = {p.name: p for p in first}
    assert set(by_name) == {"chex", "jsrt", "nih"}
    assert by_name["chex"].summary["used"] == 24 and by_name["chex"].summary["classes"] == {
        "normal": 12,
        "pneumonia": 12,
    }
    assert by_name["jsrt"].summary["masks"] == 6 and by_name["nih"].summary["used"] == 12
    assert all(p.cached.built for p in first)
    jsrt_masks = [r.mask for r in by_name["jsrt"].cached.records]
    assert all(m is not None and 0.1 < m.mean() < 0.6 for m in jsrt_masks)
    second = prepare_all(SHARED, 64, tmp_path, progress=False)
    assert not any(p.cached.built for p in second)


@needs_samples
def test_prepare_data_cli_prints_the_table(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/prepare_data.py",
            "--data-root",
            str(SHARED),
            "--image-size",
            "32",
            "--cache-dir",
            str(tmp_path),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "chex" in proc.stdout and "jsrt" in proc.stdout and "nih" in proc.stdout


def test_prepare_data_cli_names_a_bad_root(tmp_path):
    (tmp_path / "chex").mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/prepare_data.py",
            "--data-root",
            str(tmp_path),
            "--cache-dir",
            str(tmp_path / "c"),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1 and "chex" in proc.stderr and "expected" in proc.stderr.lower()
    proc = subprocess.run(
        [sys.executable, "scripts/prepare_data.py", "--data-root", str(tmp_path / "nothing")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1 and "data root not found" in proc.stderr


@needs_samples
def test_train_on_the_shared_real_samples(tmp_path):
    import json

    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/train.py",
            "--data-root",
            str(SHARED),
            "--seg-labels",
            "2",
            "--cls-labels",
            "4",
            "--steps",
            "2",
            "--image-size",
            "32",
            "--out",
            str(out),
            "--no-progress",
            "--set",
            f"real.cache_dir={tmp_path / 'cache'}",
            "--set",
            "model.widths=[4,8,16]",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "jsrt: found 6, used 6" in proc.stdout and "chex: found 24, used 24" in proc.stdout
    split = json.loads((out / "split.json").read_text())
    assert all(uid.startswith("jsrt/") for uid in split["seg"]["labeled"])
    # the recipe's decoder also learns from the CheX children's training images, unlabeled
    seg_unlabeled = split["seg"]["unlabeled"]
    assert all(uid.startswith(("jsrt/", "chex/train/")) for uid in seg_unlabeled)
    assert any(uid.startswith("chex/train/") for uid in seg_unlabeled)
    assert all(uid.startswith("chex/train/") for uid in split["cls"]["labeled"])
    assert any(uid.startswith("chex/test/") for uid in split["test"])
    assert all(uid.startswith("nih/") for uid in split["cross"]) and len(split["cross"]) == 12
    summary = json.loads((out / "summary.json").read_text())
    assert "dice" in summary["in_domain"] and "accuracy" in summary["cross_domain"]
