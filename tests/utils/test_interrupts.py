"""Ctrl-C is never lost: an interrupt swallowed on the way (as in a finaliser) still keeps the
previous results in place and still exits 130."""

import signal

from multimix.runs.cli import run_main
from multimix.utils.atomic import replaced_folder


def test_a_swallowed_interrupt_keeps_the_previous_report_and_exits_130(tmp_path, capsys):
    report = tmp_path / "evaluation"
    report.mkdir()
    (report / "report.md").write_text("the previous report")

    def evaluate() -> int:
        try:
            signal.raise_signal(signal.SIGINT)  # arrives while a callback runs ...
        except KeyboardInterrupt:
            pass  # ... which drops it, as "Exception ignored in ..." does
        with replaced_folder(report) as staging:
            (staging / "report.md").write_text("a report finished after Ctrl-C")
        return 0

    assert run_main(evaluate) == 130
    assert (report / "report.md").read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluation"]  # no staging folder left
    assert "interrupted" in capsys.readouterr().err
    assert run_main(lambda: 0) == 0  # a later command in this process is not refused
