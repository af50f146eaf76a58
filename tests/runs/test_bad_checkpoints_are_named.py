"""A file that is no checkpoint, or a hand-edited or mismatched one, is named in one line.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_cases import one_error_line, png, predict

from multimix.models.factory import load_trained_model
from multimix.utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint

# --- 7. a file that is not a checkpoint ----------------------------------------------------------


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"", b"\x89PNG\r\n\x1a\n"])
def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path, content):
    path = tmp_path / "best.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{path}: not a checkpoint"):
        load_checkpoint(path)


def test_predict_with_a_text_file_as_checkpoint_is_one_line(tmp_path, capsys):
    png(tmp_path / "a.png")
    (tmp_path / "passwd").write_text("root:x:0:0\n")
    assert predict(tmp_path / "a.png", tmp_path / "passwd", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "not a checkpoint" in one_error_line(err)
    assert "lists every file finished so far" not in err  # none was: the checkpoint was refused first
    assert not (tmp_path / "out").exists()


# --- 9. a hand-edited or mismatched checkpoint ---------------------------------------------------


def _edited(checkpoint: Path, to: Path, edit) -> Path:
    state = load_checkpoint(checkpoint)
    edit(state["run"]["config"])
    save_checkpoint(state, to)
    return to


def test_a_checkpoint_whose_config_disagrees_with_its_network_is_named(trained_checkpoint, tmp_path, capsys):
    path = _edited(trained_checkpoint, tmp_path / "edited.pt", lambda c: c["model"].update(widths=[8, 16, 32]))
    model, _ = load_trained_model(path)  # the network is built as the checkpoint describes it
    assert list(model.encoder.widths) == [4, 8, 16]
    assert "config says model.widths [8, 16, 32] but its network has [4, 8, 16]" in capsys.readouterr().err


def test_a_checkpoint_whose_network_disagrees_with_its_weights_is_one_line(trained_checkpoint, tmp_path, capsys):
    state = load_checkpoint(trained_checkpoint)
    state["run"]["network"]["kwargs"]["widths"] = [8, 16, 32]
    save_checkpoint(state, tmp_path / "mixed.pt")
    png(tmp_path / "a.png")
    assert predict(tmp_path / "a.png", tmp_path / "mixed.pt", tmp_path / "out") == 1
    assert "mixed.pt: its weights do not fit the network it describes" in one_error_line(capsys.readouterr().err)


def test_a_checkpoint_with_an_impossible_image_size_is_refused_before_allocating(trained_checkpoint, tmp_path, capsys):
    path = _edited(trained_checkpoint, tmp_path / "huge.pt", lambda c: c["data"].update(image_size=120_000))
    png(tmp_path / "a.png")
    assert predict(tmp_path / "a.png", path, tmp_path / "out") == 1
    assert "data.image_size" in one_error_line(capsys.readouterr().err)
