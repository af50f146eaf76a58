"""Fault cases of the second reliability pass: each failed before its fix (see
docs/troubleshooting.md). Tiny synthetic runs; every case runs in seconds."""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_faults import finished_run, one_error_line, train  # noqa: F401  (a fixture, shared)

from multimix.data.cache import build_cache
from multimix.data.io import read_image_file
from multimix.data.pixels import ImageReadError
from multimix.data.prepare import write_skip_report
from multimix.data.records import Record
from multimix.models.factory import load_pretrained_encoder, load_trained_model, make_model
from multimix.prediction.reader import decode_image_bytes, read_input_image
from multimix.runs.commands import evaluate as evaluate_command
from multimix.runs.commands import predict as predict_command
from multimix.utils import atomic
from multimix.utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from multimix.utils.csv_safe import safe_cell
from multimix.utils.locks import exclusive_lock

from helpers import tiny_config


def evaluate(checkpoint: Path, out: Path) -> int:
    return evaluate_command.main(
        ["--checkpoint", str(checkpoint), "--out", str(out), "--bootstrap", "20", "--samples", "1", "--no-progress"]
    )


def predict(inputs: Path, checkpoint: Path, out: Path) -> int:
    return predict_command.main([str(inputs), "--checkpoint", str(checkpoint), "--out", str(out), "--no-progress"])


def png(path: Path, mode: str = "L", side: int = 24, value: int = 128) -> Path:
    """A PNG in Pillow ``mode`` whose gray level is ``value`` (of 255) everywhere."""
    gray = Image.new("L", (side, side), value)
    if mode == "I;16":
        Image.fromarray(np.full((side, side), value * 257, np.uint16)).save(path)
    elif mode == "I":  # 32-bit integers holding 16-bit values (TIFF; Pillow's mode for some 16-bit files)
        Image.fromarray(np.full((side, side), value * 257, np.int32)).save(path.with_suffix(".tif"))
        return path.with_suffix(".tif")
    elif mode == "CMYK":
        gray.convert("RGB").convert("CMYK").save(path.with_suffix(".jpg"))
        return path.with_suffix(".jpg")
    else:
        gray.convert(mode).save(path)
    return path


def rows(csv_path: Path) -> list[dict[str, str]]:
    with open(csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


# --- 1, 2. a report folder never mixes two evaluations -------------------------------------------


def test_a_second_evaluate_into_a_busy_out_refuses_at_once(trained_checkpoint, tmp_path, capsys):
    out = tmp_path / "E"
    with exclusive_lock(tmp_path / ".E.lock", what="evaluation folder E"):  # another evaluate is writing E
        assert evaluate(trained_checkpoint, out) == 1
    assert "in use by another process" in one_error_line(capsys.readouterr().err)
    assert not out.exists()


def test_a_new_report_replaces_the_old_one_whole(trained_checkpoint, tmp_path):
    other = tmp_path / "b" / "checkpoints"
    shutil.copytree(trained_checkpoint.parent.parent, tmp_path / "b", dirs_exist_ok=True)
    out = tmp_path / "E"
    assert evaluate(trained_checkpoint, out) == 0
    (out / "figures" / "stale.png").write_bytes(b"from the first model")
    assert evaluate(other / "best.pt", out) == 0
    assert str(other / "best.pt") in (out / "report.md").read_text()
    assert json.loads((out / "metrics.json").read_text())["models"][0]["checkpoint"] == str(other / "best.pt")
    assert not (out / "figures" / "stale.png").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".E.")] == [".E.lock"]  # no temporary folder


def test_an_interrupted_evaluate_leaves_the_previous_report_as_it_was(
    trained_checkpoint, tmp_path, monkeypatch, capsys
):
    out = tmp_path / "E"
    assert evaluate(trained_checkpoint, out) == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("multimix.evaluation.report.write_figures", interrupted)
    assert evaluate(trained_checkpoint, out) == 130
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".E.")] == [".E.lock"]


def test_evaluate_refuses_an_out_holding_other_files_before_evaluating(trained_checkpoint, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert evaluate(trained_checkpoint, tmp_path) == 1
    assert "not an evaluation report" in one_error_line(capsys.readouterr().err)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


# --- 3. no formula in a CSV ------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=cmd|calc!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_a_cell_a_spreadsheet_would_run_is_neutralised(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-0.25", "+3", "-", "x=1", "scan.png", 0.5, -1, None])
def test_numbers_and_plain_text_are_left_alone(value):
    assert safe_cell(value) == value


def test_predictions_csv_neutralises_a_formula_file_name(trained_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the file column holds the name as given: here it starts with "="
    png(tmp_path / "=cmd|calc!A0.png")
    assert predict(Path("=cmd|calc!A0.png"), trained_checkpoint, tmp_path / "out") == 0
    (row,) = rows(tmp_path / "out" / "predictions.csv")
    cells = [row["file"], row["mask_png"], row["saliency_png"], row["boundary_png"]]
    assert all(cell.startswith("'=") for cell in cells), cells


def test_the_skip_report_neutralises_a_formula_path(tmp_path):
    path = write_skip_report([{"source": "chex", "path": "@evil.png", "reason": "-bad"}], tmp_path / "skipped.csv")
    (row,) = rows(path)
    assert row["path"] == "'@evil.png" and row["reason"] == "'-bad"


def test_per_image_csv_neutralises_a_formula_uid(trained_checkpoint, tmp_path, monkeypatch):
    from multimix.runs import evaluate as evaluate_module

    sets = evaluate_module.evaluation_sets

    def renamed(*args, **kwargs):
        found = sets(*args, **kwargs)
        return {name: [dataclasses.replace(r, uid="=" + r.uid) for r in records] for name, records in found.items()}

    monkeypatch.setattr(evaluate_module, "evaluation_sets", renamed)
    assert evaluate(trained_checkpoint, tmp_path / "E") == 0
    assert all(row["uid"].startswith("'=") for row in rows(tmp_path / "E" / "per_image.csv"))


# --- 4. every image mode, and one odd image never stops a batch -----------------------------------


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I", "CMYK"])
def test_every_image_mode_reads_as_its_gray_level(tmp_path, mode):
    value = 255 if mode == "1" else 128
    path = png(tmp_path / "x.png", mode, value=value)
    pixels = read_image_file(str(path))
    assert pixels.shape == (24, 24) and pixels.dtype == np.float32
    np.testing.assert_allclose(pixels, value / 255, atol=0.02)
    if path.suffix in (".png", ".jpg"):  # uploads: PNG, JPEG or DICOM
        np.testing.assert_allclose(decode_image_bytes(path.read_bytes(), name=path.name), pixels, atol=0.02)


def test_a_palette_png_with_transparency_reads_its_colours(tmp_path):
    image = Image.new("L", (8, 8), 200).convert("P")
    image.save(tmp_path / "p.png", transparency=0)
    np.testing.assert_allclose(read_image_file(str(tmp_path / "p.png")), 200 / 255, atol=0.01)


def test_alpha_is_dropped_not_composited(tmp_path):
    pixels = np.zeros((8, 8, 2), np.uint8)
    pixels[..., 0] = 100  # gray 100, fully transparent: compositing on white would give 1.0
    Image.fromarray(pixels, "LA").save(tmp_path / "la.png")
    np.testing.assert_allclose(read_image_file(str(tmp_path / "la.png")), 100 / 255, atol=1e-6)


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((10, 20), np.uint8)
    pixels[:, :5] = 255  # a bright left edge, stored as a landscape image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    upright = read_image_file(str(tmp_path / "phone.jpg"))
    assert upright.shape == (20, 10)
    assert upright[:5].mean() > 0.9 and upright[-5:].mean() < 0.1  # the bright edge is now at the top


def test_predict_with_one_grey_alpha_png_among_good_files_predicts_the_others(trained_checkpoint, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name, mode in (("a.png", "L"), ("b.png", "LA"), ("c.png", "RGB")):
        png(inputs / name, mode)
    (inputs / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert predict(inputs, trained_checkpoint, tmp_path / "out") == 0
    status = {Path(r["file"]).name: r["status"] for r in rows(tmp_path / "out" / "predictions.csv")}
    assert status["a.png"] == status["b.png"] == status["c.png"] == "ok"
    assert status["d.png"] != "ok"


def test_a_cache_build_over_a_grey_alpha_png_keeps_it(tmp_path):
    paths = {m: png(tmp_path / f"{m}.png", m) for m in ("L", "LA", "RGBA")}
    records = [Record(uid=f"d/{m}.png", source="d", image_path=str(path)) for m, path in paths.items()]
    cached = build_cache(records, 16, tmp_path / "cache", name="d", on_error="skip", progress=False)
    assert [r.uid for r in cached.records] == [r.uid for r in records] and not cached.skipped


# --- 5. a corrupt cache is named, moved aside and rebuilt -----------------------------------------


def _cache(tmp_path: Path):
    paths = [png(tmp_path / f"{i}.png", value=40 * i) for i in range(3)]
    records = [Record(uid=f"d/{i}.png", source="d", image_path=str(path)) for i, path in enumerate(paths)]
    return records, build_cache(records, 16, tmp_path / "cache", name="d", progress=False)


@pytest.mark.parametrize(
    "damage",
    [
        lambda f: (f / "images.npy").write_bytes((f / "images.npy").read_bytes()[:200]),
        lambda f: (f / "index.json").write_text("{garbage"),
        lambda f: (f / "index.json").write_text((f / "index.json").read_text().replace('"d/1.png"', '"d/9.png"')),
    ],
    ids=["truncated-images", "garbage-index", "edited-index"],
)
def test_a_damaged_cache_is_named_moved_aside_and_rebuilt(tmp_path, capsys, damage):
    records, first = _cache(tmp_path)
    expected = np.array([r.image for r in first.records])
    damage(first.folder)
    again = build_cache(records, 16, tmp_path / "cache", name="d", progress=False)
    assert again.built and again.folder == first.folder
    np.testing.assert_array_equal(np.array([r.image for r in again.records]), expected)
    assert f"the cache {first.folder} is damaged" in capsys.readouterr().err
    assert len(list((tmp_path / "cache").glob(f"{first.folder.name}.corrupt-*"))) == 1


def test_an_intact_cache_is_reused(tmp_path):
    records, first = _cache(tmp_path)
    assert first.built and not build_cache(records, 16, tmp_path / "cache", name="d", progress=False).built


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


# --- 8. values that cannot work ------------------------------------------------------------------


@pytest.mark.parametrize(
    "override, key",
    [
        ("model.widths=[-16,32,64]", "model.widths"),
        ("model.widths=[0,0,0]", "model.widths"),
        ("method.dice_weight=nan", "method.dice_weight"),
        ("method.ce_weight=1e309", "method.ce_weight"),
        ("method.kl_weight=-inf", "method.kl_weight"),
        ("method.fixmatch_weight=-1", "method.fixmatch_weight"),
        ("train.weight_decay=-1", "train.weight_decay"),
        ("model.dropout=2", "model.dropout"),
        ("data.image_size=100000", "data.image_size"),
    ],
)
def test_values_that_cannot_work_are_refused_before_anything_is_written(tmp_path, capsys, override, key):
    assert train(tmp_path / "run", "--set", override) == 1
    assert key in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


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


# --- 10. refusals leave no run folder ------------------------------------------------------------


def test_a_missing_init_encoder_leaves_no_run_folder(tmp_path, capsys):
    assert train(tmp_path / "D", "--init-encoder", str(tmp_path / "missing.pt")) == 1
    assert "missing.pt" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "D").exists()


def test_a_split_of_other_data_leaves_no_run_folder(finished_run, tmp_path, capsys):  # noqa: F811
    split = json.loads((finished_run / "split.json").read_text())
    split["test"] = ["nowhere/x.png"]
    (tmp_path / "split.json").write_text(json.dumps(split))
    assert train(tmp_path / "D", "--split", str(tmp_path / "split.json")) == 1
    assert "split.json" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "D").exists()


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
