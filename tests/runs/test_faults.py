"""Fault injection: what a user can do wrong, or the machine can do to a run, on tiny budgets.

Each test names the behaviour a user relies on (docs/troubleshooting.md).
"""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from fake_trees import pixel_bomb
from skimage import io as skio

from multimix.data import pixels
from multimix.data.cache import build_cache
from multimix.data.io import read_image_file
from multimix.data.pixels import ImageReadError, ImageTooLargeError
from multimix.data.records import Record
from multimix.engine import trainer as trainer_module
from multimix.prediction.reader import decode_image_bytes
from multimix.utils import precision
from multimix.utils.locks import LockedError, exclusive_lock

from helpers import REPO_ROOT, tiny_cli_args

ROOT = REPO_ROOT
SAMPLES = ROOT.parent / "shared" / "data"


def script(name: str):
    """``scripts/<name>.py``'s ``main``, imported in-process (no interpreter start per call)."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def train(out: Path, *extra: str) -> int:
    """A tiny ``train.py`` run; batch size and device as flags, so ``extra`` flags can override them."""
    tiny = tiny_cli_args()
    pairs = [tiny[i : i + 2] for i in range(0, len(tiny), 2)]
    tiny = [a for pair in pairs if not pair[1].startswith(("data.batch_size", "train.device")) for a in pair]
    return script("train")(
        [
            "--seg-labels",
            "4",
            "--cls-labels",
            "8",
            "--out",
            str(out),
            "--no-progress",
            "--batch-size",
            "2",
            "--device",
            "cpu",
            *tiny,
            *extra,
        ]
    )


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "run"
    assert train(out, "--steps", "2") == 0
    return out


def copy_run(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


# --- 1. a refused --resume leaves the run as it was ---------------------------------------------


@pytest.mark.parametrize("override", ["synthetic.cls_pool=40", "model.widths=[8,16,32]"])
def test_refused_resume_names_the_setting_and_writes_nothing(finished_run, tmp_path, capsys, override):
    run = copy_run(finished_run, tmp_path / "run")

    def files():  # the lock file holds the pid of whoever holds it last: not run content
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}

    before = files()
    capsys.readouterr()
    assert train(run, "--resume", "--steps", "4", "--set", override) == 1
    line = one_error_line(capsys.readouterr().err)
    assert override.split("=")[0] in line and "nothing was written" in line
    assert files() == before
    assert train(run, "--resume", "--steps", "4") == 0  # the run still resumes
    assert "resuming" in capsys.readouterr().out


def test_resume_of_an_empty_folder_says_it_starts_fresh(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert train(tmp_path / "empty", "--resume", "--steps", "2") == 0
    assert "has no checkpoint yet; starting a new run" in capsys.readouterr().out


def test_truncated_last_checkpoint_on_resume_is_one_line(finished_run, tmp_path, capsys):
    run = copy_run(finished_run, tmp_path / "run")
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    assert train(run, "--resume", "--steps", "4") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "last.pt" in line and "truncated or corrupt" in line


# --- 2. one writer per run folder and per cache ----------------------------------------------------


def test_second_training_into_a_busy_run_folder_refuses(tmp_path, capsys):
    out = tmp_path / "run"
    with exclusive_lock(out / ".lock", what="run folder"):
        assert train(out, "--steps", "2") == 1
    line = one_error_line(capsys.readouterr().err)
    assert "in use by another process" in line and str(os.getpid()) in line
    assert not (out / "config.yaml").exists()


def test_a_sigkilled_holder_leaves_no_stuck_lock(tmp_path):
    lock = tmp_path / "run" / ".lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; sys.path.insert(0, sys.argv[1]); from multimix.utils.locks import exclusive_lock\n"
                "with exclusive_lock(sys.argv[2], what='run'):\n    print('held', flush=True); time.sleep(60)"
            ),
            str(ROOT),
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(LockedError, match=f"pid {holder.pid}"):
        with exclusive_lock(lock, what="run"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    with exclusive_lock(lock, what="run"):  # free again: the kernel dropped the dead process's lock
        pass


def test_two_cache_builds_of_one_source_at_once_both_succeed(tmp_path):
    records = [Record(uid=f"d/{i}", source="d", image_path=str(_png(tmp_path / f"{i}.png", 40 * i))) for i in range(4)]
    results, errors = [], []

    def build():
        try:
            results.append(build_cache(records, 16, tmp_path / "cache", name="d", progress=False))
        except Exception as err:  # pragma: no cover - the failure this test is about
            errors.append(err)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sorted(r.built for r in results) == [False, True]
    assert all(len(r.records) == 4 for r in results)


# --- 3. pixel bombs are refused from the header ----------------------------------------------------


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_pixel_bomb_is_refused_before_decoding(tmp_path):
    bomb = pixel_bomb(tmp_path / "bomb.png")
    with pytest.raises(ImageTooLargeError, match="12000x12000.*limit of 100"):
        read_image_file(str(bomb))
    with pytest.raises(ImageTooLargeError, match="upload"):
        decode_image_bytes(bomb.read_bytes())
    pixels.set_max_megapixels(200)  # a higher limit lets the decoder have it
    try:
        try:
            read_image_file(str(bomb))
        except ImageTooLargeError:
            pytest.fail("the raised limit was ignored")
        except ImageReadError:
            pass  # the stub's pixel data may or may not decode
    finally:
        pixels.set_max_megapixels(pixels.DEFAULT_MAX_MEGAPIXELS)


def test_predict_skips_a_pixel_bomb_and_names_it(tmp_path, trained_checkpoint, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _png(folder / "fine.png", 90, size=40)
    pixel_bomb(folder / "bomb.png")
    code = script("predict")(
        [
            str(folder),
            "--checkpoint",
            str(trained_checkpoint),
            "--out",
            str(tmp_path / "out"),
            "--no-progress",
            "--max-megapixels",
            "50",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "bomb.png" in err and "limit of 50" in err
    rows = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 3 and any("bomb.png" in r and ",error," in r for r in rows)


def test_prepare_data_skips_a_pixel_bomb_and_lists_it(tmp_path, capsys):
    chex = tmp_path / "data" / "chex" / "chest_xray" / "train"
    for i in range(2):
        _png(chex / "NORMAL" / f"IM-000{i}-0001.jpeg", 100)
        _png(chex / "PNEUMONIA" / f"person{i}_bacteria_{i}.jpeg", 150)
    pixel_bomb(chex / "NORMAL" / "IM-0009-0001.jpeg")  # PNG bytes: a reader judges by content
    (chex / "NORMAL" / "IM-0008-0001.jpeg").write_bytes(b"")  # a zero-byte file
    code = script("prepare_data")(
        [
            "--data-root",
            str(tmp_path / "data"),
            "--image-size",
            "16",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "IM-0009-0001.jpeg" in out and "megapixels" in out
    assert "IM-0008-0001.jpeg" in out and "empty file (0 bytes)" in out
    report = (tmp_path / "cache" / "skipped-16px.csv").read_text()
    assert "IM-0009-0001.jpeg" in report and "IM-0008-0001.jpeg" in report


# --- 4. user and environment errors are one line; bugs keep their traceback ---------------------


@pytest.mark.parametrize(
    "flags, expected",
    [
        (["--batch-size", "0"], "data.batch_size must be at least 1"),
        (["--steps", "0"], "train.steps must be at least 1"),
        (["--init-encoder", "/nowhere/pretrain.pt"], "/nowhere/pretrain.pt"),
        (["--device", "gpu"], "not a device name"),
    ],
)
def test_bad_train_flags_are_one_line(tmp_path, capsys, flags, expected):
    assert train(tmp_path / "run", "--steps", "2", *flags) != 0
    assert expected in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_without_a_gpu_is_one_line_before_any_data_is_read(tmp_path, capsys):
    assert train(tmp_path / "run", "--steps", "2", "--device", "cuda") == 1
    assert "no CUDA GPU" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_split_of_other_data_is_one_line(finished_run, tmp_path, capsys):
    split = json.loads((finished_run / "split.json").read_text())
    split["cls"]["labeled"][0] = "chex/train/PNEUMONIA/person1_virus_1.jpeg"  # an image of another run's data
    (tmp_path / "split.json").write_text(json.dumps(split))
    assert train(tmp_path / "run", "--steps", "2", "--split", str(tmp_path / "split.json")) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "split.json names 1 images" in line and "person1_virus_1" in line


def test_out_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert train(tmp_path / "file" / "run", "--steps", "2") == 1
    assert "file" in one_error_line(capsys.readouterr().err)


def test_full_disk_while_checkpointing_is_one_line_and_keeps_the_last_checkpoint(
    finished_run, tmp_path, capsys, monkeypatch
):
    run = copy_run(finished_run, tmp_path / "run")
    last = (run / "checkpoints" / "last.pt").read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run / "checkpoints" / "last.pt"))

    monkeypatch.setattr(trainer_module, "save_checkpoint", full)
    assert train(run, "--resume", "--steps", "4") == 1
    assert "no space left on the device" in one_error_line(capsys.readouterr().err)
    assert (run / "checkpoints" / "last.pt").read_bytes() == last


def test_a_bug_keeps_its_traceback_and_debug_shows_expected_errors(tmp_path, capsys, monkeypatch):
    from multimix.runs import cli

    def bug():
        raise KeyError("internal")

    assert cli.run_main(bug) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "bug in multimix" in err
    with pytest.raises(ValueError):
        cli.run_main(lambda: (_ for _ in ()).throw(ValueError("bad value")), debug=True)


def test_prepare_data_bad_image_size_is_one_line(tmp_path, capsys):
    assert script("prepare_data")(["--data-root", str(tmp_path), "--image-size", "0"]) == 2
    assert "--image-size must be at least 16" in one_error_line(capsys.readouterr().err)


# --- 5. predict.py never wipes or re-reads its own outputs ---------------------------------------


def test_predict_bad_batch_size_leaves_predictions_csv_alone(tmp_path, trained_checkpoint, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("earlier results\n")
    _png(tmp_path / "x.png", 90, size=40)
    code = script("predict")(
        [str(tmp_path / "x.png"), "--checkpoint", str(trained_checkpoint), "--out", str(out), "--batch-size", "0"]
    )
    assert code == 2 and "--batch-size" in one_error_line(capsys.readouterr().err)
    assert (out / "predictions.csv").read_text() == "earlier results\n"


def test_predict_into_a_folder_inside_its_input_skips_its_own_outputs(tmp_path, trained_checkpoint, capsys):
    folder = tmp_path / "in"
    _png(folder / "a.png", 90, size=40)
    args = [str(folder), "--checkpoint", str(trained_checkpoint), "--out", str(folder / "pred"), "--no-progress"]
    predict = script("predict")
    assert predict(args) == 0
    assert predict(args) == 0  # the second run must not predict the first one's PNGs
    rows = (folder / "pred" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 2 and "a.png" in rows[1]


# --- 7. small lies -------------------------------------------------------------------------------


def test_nan_loss_message_does_not_point_at_a_missing_checkpoint(tmp_path, capsys):
    assert train(tmp_path / "run", "--steps", "3", "--lr", "1e30") == 1  # weights blow up after the first step
    line = one_error_line(capsys.readouterr().err)
    assert "no checkpoint was written before it" in line and "last.pt" not in line


@pytest.mark.skipif(not (SAMPLES / "chex").is_dir(), reason="needs the shared real samples")
def test_no_progress_silences_the_cache_bars(tmp_path, capsys):
    code = script("train")(
        [
            "--data-root",
            str(SAMPLES),
            "--seg-labels",
            "2",
            "--cls-labels",
            "4",
            "--steps",
            "1",
            "--image-size",
            "32",
            "--out",
            str(tmp_path / "run"),
            "--no-progress",
            "--set",
            "model.widths=[4,8,16]",
            "--set",
            f"real.cache_dir={tmp_path / 'cache'}",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "cache chex" not in captured.err and "img/s" not in captured.err


# --- 8. precision that would be hundreds of times slow -------------------------------------------


def test_bf16_on_a_cpu_that_emulates_it_warns_with_the_measured_speeds(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    monkeypatch.setattr(precision, "cpu_matmul_speed", lambda: precision.MatmulSpeed(100.0, 0.3))
    message = trainer_module.precision_warning("bf16", torch.device("cpu"))
    assert "no native bfloat16" in message and "0.30 GFLOP/s" in message and "333x slower" in message
    assert trainer_module.precision_warning("fp32", torch.device("cpu")) is None


@pytest.mark.parametrize(
    "native, slowdown, expected", [(False, 300.0, None), (True, 2.0, None), (True, 0.5, torch.bfloat16)]
)
def test_auto_picks_bf16_on_cpu_only_where_native_and_faster(monkeypatch, native, slowdown, expected):
    monkeypatch.setattr(precision, "native_bf16", lambda device: native)
    monkeypatch.setattr(precision, "cpu_matmul_speed", lambda: precision.MatmulSpeed(100.0, 100.0 / slowdown))
    assert trainer_module.resolve_precision("auto", torch.device("cpu")) is expected


def test_native_bf16_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not precision.native_bf16(torch.device("cpu"))
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.native_bf16(torch.device("cpu"))


def _png(path: Path, value: int, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.clip(np.add.outer(np.arange(size), np.arange(size)) * 3 + value, 0, 255).astype(np.uint8)
    skio.imsave(path, pixels, check_contrast=False)
    return path


def test_run_lock_is_held_only_while_training(finished_run):
    with exclusive_lock(finished_run / ".lock", what="run"):  # the finished run released it
        pass
