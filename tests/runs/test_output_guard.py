"""No command writes over a checkpoint it did not make: export, card, adapt and calibrate refuse
an --out that is their input or an existing checkpoint (unless --force), and a folder."""

import shutil

import pytest

from multimix.runs.cli import main as multimix


@pytest.fixture
def run(trained_checkpoint, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(trained_checkpoint.parent.parent, folder)
    return folder


@pytest.mark.parametrize("command", ["export", "card"])
def test_export_and_card_never_replace_their_own_checkpoint(run, command, capsys):
    best = run / "checkpoints" / "best.pt"
    before = best.read_bytes()
    extra = ["--format", "torchscript"] if command == "export" else []
    assert multimix([command, "--checkpoint", str(best), "--out", str(best), *extra]) == 1
    assert "is this command's input" in capsys.readouterr().err and best.read_bytes() == before
    last = run / "checkpoints" / "last.pt"
    kept = last.read_bytes()
    assert multimix([command, "--checkpoint", str(best), "--out", str(last), *extra]) == 1
    assert "is an existing checkpoint" in capsys.readouterr().err and last.read_bytes() == kept


def test_adapt_and_calibrate_refuse_a_runs_resume_state_unless_forced(run, tmp_path, capsys):
    best, last = run / "checkpoints" / "best.pt", run / "checkpoints" / "last.pt"
    kept = last.read_bytes()
    for args in (
        ["adapt", "--images", str(tmp_path)],
        ["calibrate", "--sources", "nih"],
    ):
        assert multimix([*args, "--checkpoint", str(best), "--out", str(last), "--no-progress"]) == 1
        assert "is an existing checkpoint" in capsys.readouterr().err and last.read_bytes() == kept
    # --force lets calibrate replace another checkpoint it is told to, never its input
    assert multimix(["calibrate", "--checkpoint", str(best), "--sources", "nih", "--out", str(last), "--force"]) == 0
    assert last.read_bytes() != kept
    assert multimix(["calibrate", "--checkpoint", str(best), "--sources", "nih", "--out", str(best), "--force"]) == 1
    assert "is this command's input" in capsys.readouterr().err


def test_a_folder_or_a_new_file_as_out(tmp_path):
    from multimix.utils.checkpoints import check_output_path, looks_like_checkpoint

    with pytest.raises(ValueError, match="is a folder"):
        check_output_path(tmp_path)
    assert check_output_path(tmp_path / "new.pt") == tmp_path / "new.pt"
    (tmp_path / "notes.md").write_text("x")
    assert check_output_path(tmp_path / "notes.md") == tmp_path / "notes.md"  # not a checkpoint: replaced
    assert not looks_like_checkpoint(tmp_path / "notes.md")


def test_two_runs_started_in_the_same_second_get_two_folders(tmp_path, monkeypatch):
    from multimix.config import load_config
    from multimix.runs import folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(folder.time, "strftime", lambda fmt, *a: "20261207-120000")
    names = []
    for _ in range(3):
        cfg = load_config("multimix")
        out = folder.resolve_run_folder(cfg)
        out.mkdir(parents=True)
        names.append(out.name)
    stem = names[0]
    assert names == [stem, f"{stem}-2", f"{stem}-3"] and stem.endswith("-20261207-120000")
