"""User and environment errors are one line; bugs keep their traceback.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch
from fault_cases import copy_run, one_error_line, script, train

from multimix.engine import trainer as trainer_module

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
