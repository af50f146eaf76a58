"""One resolution of a command's config (runs/flags.py), the shared flags, and the grid runners'
skip/resume rule (runs/grid.py)."""

import math

import pytest
import yaml

from multimix.runs import cli, grid
from multimix.runs.flags import DEFAULT_CONFIG, REAL_DATA_CONFIG, config_source, data_root_overrides

# every subcommand that builds a config from flags, with the extra flags it needs to get there
CONFIG_COMMANDS = {
    "train": [],
    "pretrain": [],
    "finetune": [],
    "distill": [],
    "ablation": [],
    "cv": [],
    "devloop": ["--variants-file", "unused.yaml"],  # --print-config stops before the file is read
}


def printed_config(capsys, command: str, *flags: str) -> dict:
    assert cli.main([command, *CONFIG_COMMANDS[command], *flags, "--print-config"]) == 0
    return yaml.safe_load(capsys.readouterr().out)


@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
def test_every_config_command_resolves_a_packaged_name(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    extra = ["--data-root", str(tmp_path)] if command == "devloop" else []
    cfg = printed_config(capsys, command, "--config", "paper", "--set", "train.lr=0.0003", *extra)
    assert cfg["data"]["image_size"] == 256 and cfg["data"]["batch_size"] == 10  # the packaged paper config
    assert cfg["train"]["lr"] == 0.0003  # --set applies on top
    assert list(tmp_path.iterdir()) == []  # printing writes nothing


def test_ablation_with_a_packaged_name_keeps_it_in_every_cell(tmp_path, capsys, monkeypatch):
    # the grid used to drop a packaged name that is not a file path and train on bare defaults
    from multimix.runs.ablation import Cell, train_cell
    from multimix.runs.commands import ablation

    seen = {}

    def fake_grid(cells, out, *, base_config, **kwargs):
        seen["base"] = base_config
        (tmp_path / "table.md").write_text("table")
        return tmp_path / "report.md"

    monkeypatch.setattr(ablation, "run_ablation", fake_grid)
    assert cli.main(["ablation", "--config", "paper", "--models", "multimix", "--out", str(tmp_path)]) == 0
    assert seen["base"] == "paper"
    trained = []
    monkeypatch.setattr(grid, "run_training", lambda cfg, resume, progress: trained.append(cfg))
    train_cell(Cell("multimix", "10", "100", 0), tmp_path, base_config="paper", overrides={}, progress=False)
    assert trained[0].model.widths == [16, 32, 64, 128, 256] and trained[0].data.image_size == 256


def test_data_root_selects_the_real_recipe_except_for_the_paper_grid(tmp_path, capsys):
    train = printed_config(capsys, "train", "--data-root", str(tmp_path))
    assert train["data"]["source"] == "real" and train["data"]["balanced_labeled"] is True
    assert train["real"]["root"] == str(tmp_path.resolve())
    ablation = printed_config(capsys, "ablation", "--data-root", str(tmp_path))
    assert ablation["data"]["source"] == "real" and ablation["data"]["balanced_labeled"] is False
    assert ablation["real"]["root"] == str(tmp_path.resolve())


def test_config_source_rule():
    assert config_source(None, None) == DEFAULT_CONFIG
    assert config_source(None, "/data") == REAL_DATA_CONFIG
    assert config_source(None, "/data", real_default=None) == DEFAULT_CONFIG
    assert config_source("paper", "/data") == "paper"
    assert data_root_overrides(None) == {}


@pytest.mark.parametrize("command", ["predict", "prepare-data", "serve"])
@pytest.mark.parametrize("limit", ["0", "-1", "nan"])
def test_every_megapixel_flag_refuses_a_limit_that_cannot_work(command, limit, tmp_path, capsys):
    required = {
        "predict": ["--checkpoint", "x.pt", "in.png"],
        "prepare-data": ["--data-root", str(tmp_path)],
        "serve": ["--checkpoint", "x.pt"],
    }[command]
    assert cli.main([command, *required, "--max-megapixels", limit]) == 2
    assert "--max-megapixels must be above 0" in capsys.readouterr().err


def test_grid_cells_skip_resume_or_train(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(grid, "run_training", lambda cfg, resume, progress: calls.append((cfg, resume)))
    finished, interrupted, new = (tmp_path / name for name in ("finished", "interrupted", "new"))
    finished.mkdir()
    (finished / "summary.json").write_text("{}")
    (interrupted / "checkpoints").mkdir(parents=True)
    (interrupted / "checkpoints" / "last.pt").write_bytes(b"")
    (interrupted / "config.yaml").write_text("train:\n  steps: 11\n")
    values = {"train.steps": 99, "train.lr": 0.005}
    for run_dir in (finished, interrupted, new):
        assert grid.train_or_resume(run_dir, base_config="paper", values=values, progress=False) == run_dir
    assert [grid.cell_state(d) for d in (finished, interrupted, new)] == ["finished", "interrupted", "new"]
    (resumed, resume_flag), (fresh, fresh_flag) = calls  # the finished cell did not train
    assert resume_flag and resumed.train.steps == 11  # its own config, not the values given again
    assert not fresh_flag and fresh.train.steps == 99 and math.isclose(fresh.train.lr, 0.005)
    assert fresh.data.image_size == 256 and fresh.train.out == str(new)  # the packaged base, in its own folder
