import os
import stat

import pytest

from multimix.utils.atomic import atomic_write, atomic_write_text


def test_atomic_text_write_replaces_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.bin"
    atomic_write_text(target, "old")

    def explode(handle):
        handle.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, explode)
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permissions")
def test_written_files_get_the_mode_a_plain_open_would_give(tmp_path):
    atomic_write_text(tmp_path / "report.md", "x")
    with open(tmp_path / "plain.md", "w") as handle:
        handle.write("x")
    mode = lambda name: stat.S_IMODE((tmp_path / name).stat().st_mode)  # noqa: E731
    assert mode("report.md") == mode("plain.md")
