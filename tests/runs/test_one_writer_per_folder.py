"""One writer per run folder and per cache: a second one refuses at once.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from fault_cases import ROOT, flat_png, one_error_line, train

from multimix.data.cache import build_cache
from multimix.data.records import Record
from multimix.utils.locks import LockedError, exclusive_lock

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
    records = [
        Record(uid=f"d/{i}", source="d", image_path=str(flat_png(tmp_path / f"{i}.png", 40 * i))) for i in range(4)
    ]
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
