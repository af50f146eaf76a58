"""The ``multimix`` command: subcommands, help, unknown names, ``--print-config``."""

import pytest

from multimix.runs import cli


def test_help_lists_every_subcommand_the_issue_promises(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in (
        "train",
        "evaluate",
        "predict",
        "serve",
        "prepare-data",
        "pretrain",
        "finetune",
        "distill",
        "select-labels",
        "ablation",
        "benchmark",
        "devloop",
        "adapt",
        "calibrate",
    ):
        assert f"  {name} " in out
    assert cli.main([]) == 2  # no command: usage, and a failing status for scripts


def test_unknown_command_is_named(capsys):
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_every_subcommand_module_has_a_main_and_a_help(capsys):
    for name in cli.COMMANDS:
        if name == "serve":
            continue  # its help is argparse's like the others; the module imports FastAPI only when serving
        with pytest.raises(SystemExit) as exit_info:
            cli.main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: multimix {name}" in capsys.readouterr().out


def test_print_config_shows_the_resolved_values_and_trains_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(
            ["train", "--config", "baselines/umtl", "--steps", "7", "--set", "method.optimizer=sgd", "--print-config"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "name: umtl" in out and "steps: 7" in out and "optimizer: sgd" in out
    assert list(tmp_path.iterdir()) == []
