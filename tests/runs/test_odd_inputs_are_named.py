"""Odd inputs (empty files, dangling links, DICOM errors, stale skip lists) are named plainly.

Tiny runs; each case failed before its fix (docs/troubleshooting.md)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from fault_cases import png, predict, rows

from multimix.data.pixels import ImageReadError
from multimix.models.factory import load_pretrained_encoder, make_model
from multimix.prediction.reader import decode_image_bytes, read_input_image
from multimix.utils.checkpoints import load_checkpoint

from helpers import tiny_config

# --- minor items ---------------------------------------------------------------------------------


def test_predict_names_an_empty_file_as_empty(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.png: empty file"):
        read_input_image(tmp_path / "empty.png")
    with pytest.raises(ImageReadError, match="upload: empty file"):
        decode_image_bytes(b"")


def test_a_dangling_symlink_is_named_where_it_is_left_out(tmp_path, trained_checkpoint):
    from multimix.data.sources import scan_source

    inputs = tmp_path / "data" / "normal"
    inputs.mkdir(parents=True)
    png(inputs / "a.png")
    (inputs / "gone.png").symlink_to(tmp_path / "nowhere.png")
    assert predict(inputs, trained_checkpoint, tmp_path / "out") == 0
    status = {Path(r["file"]).name: r for r in rows(tmp_path / "out" / "predictions.csv")}
    assert status["a.png"]["status"] == "ok" and "broken symbolic link" in status["gone.png"]["error"]
    (tmp_path / "data" / "pneumonia").mkdir()
    png(tmp_path / "data" / "pneumonia" / "b.png")
    scan = scan_source(f"folder:{tmp_path / 'data'}", None)
    assert any("gone.png" in s.path and "broken symbolic link" in s.reason for s in scan.skipped)


def test_dicom_errors_show_no_internals():
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # digital X-ray
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.BitsAllocated, dataset.SamplesPerPixel = 16, 1
    dataset.PixelData = b"\x00" * 32  # pixel data, but no Rows/Columns
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    for data in (buffer.getvalue(), buffer.getvalue()[:140]):
        with pytest.raises(ImageReadError) as caught:
            decode_image_bytes(data, name="scan.dcm")
        message = str(caught.value)
        assert message.startswith("scan.dcm: ") and " object at 0x" not in message and "FileDataset" not in message


def test_prepare_data_drops_a_stale_skip_list(tmp_path):
    from multimix.runs.commands import prepare_data

    root = tmp_path / "data" / "normal"
    root.mkdir(parents=True)
    png(root / "a.png")
    (tmp_path / "data" / "pneumonia").mkdir()
    png(tmp_path / "data" / "pneumonia" / "b.png")
    stale = tmp_path / "cache" / "skipped-32px.csv"
    stale.parent.mkdir()
    stale.write_text("source,path,reason\nold,/elsewhere/x.png,empty file\n")
    args = ["--data-root", str(tmp_path), "--sources", f"folder:{tmp_path / 'data'}", "--image-size", "32"]
    args += ["--cache-dir", str(tmp_path / "cache")]
    assert prepare_data.main([*args, "--no-progress"]) == 0
    assert not stale.exists()


def test_init_encoder_takes_a_multimix_run_checkpoint(trained_checkpoint):
    cfg = tiny_config()
    model = make_model(cfg)
    trained = load_checkpoint(trained_checkpoint)["model"]
    load_pretrained_encoder(model, trained_checkpoint)
    for name, value in model.encoder.state_dict().items():
        if f"encoder.{name}" in trained and "head" not in name:
            torch.testing.assert_close(value, trained[f"encoder.{name}"])
