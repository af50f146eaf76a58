"""A full disk is named with the file being written, and nothing half-written is left.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import errno
import io
import os

import pytest
import torch
from fault_cases import evaluate, one_error_line

from multimix.utils import atomic
from multimix.utils.checkpoints import save_checkpoint

# --- 6. disk full --------------------------------------------------------------------------------


def test_a_full_disk_while_writing_a_checkpoint_is_enospc_naming_the_file(tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class FullDisk(io.RawIOBase):
        def __init__(self, handle):
            self.handle, self.written = handle, 0

        def writable(self):
            return True

        def write(self, data):
            self.written += len(data)
            if self.written > 2000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.handle.write(data)

        def flush(self):
            self.handle.flush()

        def fileno(self):
            return self.handle.fileno()

        def close(self):
            self.handle.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    path = tmp_path / "last.pt"
    with pytest.raises(OSError) as caught:
        save_checkpoint({"model": {"w": torch.zeros(10_000)}}, path)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert not path.exists() and not list(tmp_path.iterdir())  # no temporary file left


def test_a_full_disk_while_writing_a_report_names_the_folder(trained_checkpoint, tmp_path, monkeypatch, capsys):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("multimix.evaluation.report.per_image_csv", full)
    assert evaluate(trained_checkpoint, tmp_path / "E") == 1
    assert one_error_line(capsys.readouterr().err) == f"error: {tmp_path / 'E'}: no space left on the device"
