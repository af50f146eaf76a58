"""Prediction for people: reading by content, overlays, the Predictor, and scripts/predict.py."""

import csv
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from multimix.data.pixels import ImageReadError
from multimix.prediction import (
    Predictor,
    boundary_overlay,
    decode_image_bytes,
    mask_image,
    read_input_image,
    saliency_overlay,
    sniff_format,
)
from multimix.prediction.batch import expand_inputs, output_names

from helpers import REPO_ROOT

ROOT = REPO_ROOT
SHARED = ROOT.parent / "shared" / "data"


def _png(array: np.ndarray) -> bytes:
    return iio.imwrite("<bytes>", array, extension=".png")


def test_formats_are_told_by_content_not_name():
    assert sniff_format(_png(np.zeros((4, 4), np.uint8))) == "png"
    assert sniff_format(iio.imwrite("<bytes>", np.zeros((8, 8), np.uint8), extension=".jpeg")) == "jpeg"
    assert sniff_format(b"\0" * 128 + b"DICM" + b"\0" * 10) == "dicom"
    assert sniff_format(b"GIF89a....") is None and sniff_format(b"") is None


def test_sixteen_bit_png_keeps_its_full_range():
    pixels = np.array([[0, 32768], [65535, 16384]], np.uint16)
    image = decode_image_bytes(_png(pixels))
    assert image.dtype == np.float32 and np.allclose(image, pixels / 65535.0, atol=1e-6)


def test_bad_bytes_are_named_errors():
    with pytest.raises(ImageReadError, match="scan.txt: not a PNG, JPEG or DICOM"):
        decode_image_bytes(b"hello, world", name="scan.txt")
    truncated = _png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))[:200]
    with pytest.raises(ImageReadError, match="cut.png: cannot decode image: the PNG file is truncated or corrupt"):
        decode_image_bytes(truncated, name="cut.png")


def test_a_renamed_text_file_is_rejected_by_content(tmp_path):
    fake = tmp_path / "scan.png"
    fake.write_text("not an image")
    with pytest.raises(ImageReadError, match=r"scan\.png: not a PNG, JPEG or DICOM image"):
        read_input_image(fake)


def test_boundary_overlay_colours_the_outline_only():
    image = np.full((20, 20), 0.5, np.float32)
    mask = np.zeros((20, 20), bool)
    mask[5:15, 5:15] = True
    rgb = boundary_overlay(image, mask, colour=(0, 255, 0))
    coloured = (rgb == (0, 255, 0)).all(axis=2)
    assert coloured.sum() == 36  # the inner ring of a 10x10 square
    assert coloured[5, 5:15].all() and not coloured[10, 10] and (rgb[0, 0] == 128).all()
    assert mask_image(mask).max() == 255 and mask_image(mask)[0, 0] == 0


def test_saliency_overlay_leaves_unimportant_pixels_grey():
    image = np.full((8, 8), 0.25, np.float32)
    saliency = np.zeros((8, 8), np.float32)
    saliency[2, 3] = 1.0
    rgb = saliency_overlay(image, saliency)
    assert (rgb[0, 0] == round(0.25 * 255)).all() and not (rgb[2, 3] == rgb[0, 0]).all()
    with pytest.raises(ValueError, match="differ in shape"):
        saliency_overlay(image, saliency[:4])


def test_predictor_answers_at_the_input_resolution(trained_checkpoint):
    predictor = Predictor(trained_checkpoint, device="cpu")
    assert predictor.image_size == 32  # from the checkpoint's own config
    images = [np.random.default_rng(1).random((50, 70), dtype=np.float32), np.zeros((32, 32), np.float32)]
    first, second = predictor.predict(images)
    assert first.lung_mask.shape == (50, 70) and first.saliency.shape == (50, 70) and second.lung_mask.shape == (32, 32)
    assert first.probabilities.sum() == pytest.approx(1.0) and first.class_name in ("normal", "pneumonia")
    assert 0.0 <= first.lung_fraction <= 1.0 and 0.0 <= first.saliency.min() <= first.saliency.max() <= 1.0
    described = predictor.describe()
    assert described["outputs"] == {"class": True, "lung_mask": True} and described["name"] == "MultiMix"


def test_inputs_expand_from_folders_and_globs(tmp_path):
    for name in ("a/x.png", "b/x.png", "b/notes.txt", "c.jpeg"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    files = expand_inputs(
        [str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "*.jpeg"), str(tmp_path / "a" / "x.png")]
    )
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a/x.png", "b/x.png", "c.jpeg"]
    assert output_names(files) == ["x", "x-2", "c"]


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared real-data samples are not beside the checkout")
def test_predict_script_on_real_samples_writes_overlays_and_skips_a_corrupt_file(tmp_path, trained_checkpoint):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for sample in (
        "chex/chest_xray/test/PNEUMONIA/person1_virus_12.jpeg",
        "jsrt/png/images/JPCNN003.png",
        "jsrt/All247images/JPCLN001.IMG",
    ):
        (inputs / Path(sample).name).write_bytes((SHARED / sample).read_bytes())
    (inputs / "broken.png").write_bytes((SHARED / "jsrt/png/images/JPCNN003.png").read_bytes()[:3000])
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/predict.py",
            str(inputs),
            "--checkpoint",
            str(trained_checkpoint),
            "--out",
            str(out),
            "--device",
            "cpu",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "broken.png" in proc.stderr and "3 of 4 images predicted, 1 skipped" in proc.stdout
    rows = {Path(r["file"]).name: r for r in csv.DictReader((out / "predictions.csv").open())}
    assert rows["broken.png"]["status"] == "error" and "truncated" in rows["broken.png"]["error"]
    jsrt = rows["JPCLN001.IMG"]
    assert jsrt["status"] == "ok" and (jsrt["width"], jsrt["height"]) == ("2048", "2048")
    assert float(jsrt["p_normal"]) + float(jsrt["p_pneumonia"]) == pytest.approx(1.0, abs=1e-5)
    mask = iio.imread(out / jsrt["mask_png"])
    assert mask.shape == (2048, 2048) and set(np.unique(mask)) <= {0, 255}
    assert float(jsrt["lung_fraction"]) == pytest.approx((mask == 255).mean(), abs=1e-6)
    for row in (r for r in rows.values() if r["status"] == "ok"):
        assert iio.imread(out / row["boundary_png"]).shape[-1] == 3 and (out / row["saliency_png"]).exists()


def test_predict_script_with_nothing_to_read_says_so(tmp_path, trained_checkpoint):
    proc = subprocess.run(
        [sys.executable, "scripts/predict.py", str(tmp_path / "*.png"), "--checkpoint", str(trained_checkpoint)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 1 and "no image files found" in proc.stderr and "names no image file" in proc.stderr


def _dicom(path: Path, pixels: np.ndarray, photometric: str) -> None:
    pydicom = pytest.importorskip("pydicom", reason="pydicom (the dicom extra) is not installed")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 2, -100
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_is_read_by_content_with_its_rescale_and_polarity(tmp_path, photometric):
    pixels = np.array([[100, 200], [300, 500]], np.uint16)
    path = tmp_path / "scan"  # no suffix: recognised by the DICM marker
    _dicom(path, pixels, photometric)
    rescaled = pixels * 2.0 - 100  # the modality LUT; the file has no window: the 0.5-99.5th percentile window
    low, high = np.percentile(rescaled, (0.5, 99.5))
    expected = np.clip((rescaled - low) / (high - low), 0, 1)
    if photometric == "MONOCHROME1":
        expected = 1.0 - expected
    assert np.allclose(read_input_image(path), expected, atol=1e-6)
    assert np.allclose(decode_image_bytes(path.read_bytes()), expected, atol=1e-6)


def test_the_web_app_without_its_extra_says_what_to_install():
    code = (
        "import sys, runpy; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None; "
        "sys.argv = ['multimix', 'serve', '--checkpoint', 'missing.pt']; "
        "runpy.run_module('multimix', run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1 and 'pip install -e ".[serve]"' in proc.stderr


def test_prediction_resizes_as_the_training_cache_does(tmp_path, trained_checkpoint):
    """One resize for caches and prediction: a file gives the network the pixels it was
    trained and evaluated on, whichever way it arrives."""
    from skimage import io as skio

    from multimix.data.cache import build_cache
    from multimix.data.io import read_image_file
    from multimix.data.records import Record
    from multimix.data.transforms import eval_transform

    rng = np.random.default_rng(0)
    skio.imsave(tmp_path / "x.png", (rng.random((90, 70)) * 255).astype(np.uint8), check_contrast=False)
    predictor = Predictor(trained_checkpoint, device="cpu")
    size = predictor.image_size
    record = Record(uid="d/x.png", source="d", image_path=str(tmp_path / "x.png"))
    cached = build_cache([record], size, tmp_path / "cache", name="d", progress=False).records[0]
    from_cache = eval_transform(size)(np.asarray(cached.image, dtype=np.float32))[0]
    from_file = predictor.preprocess(read_image_file(str(tmp_path / "x.png")))
    assert torch.equal(from_file, from_cache)


def test_predictor_takes_paths_as_predict_reads_them(tmp_path, trained_checkpoint):
    import multimix
    from multimix.prediction import read_input_image

    rng = np.random.default_rng(1)
    path = tmp_path / "scan.png"
    iio.imwrite(path, (rng.random((50, 70)) * 65535).astype(np.uint16))
    predictor = Predictor(trained_checkpoint, device="cpu")
    from_path, from_array = predictor.predict([path, read_input_image(path)])
    assert from_path.lung_mask.shape == (50, 70)
    assert np.allclose(from_path.probabilities, from_array.probabilities)
    tensor = multimix.preprocess(str(path), image_size=predictor.image_size)
    assert torch.equal(tensor, predictor.preprocess(path)) and tensor.shape == (1, 32, 32)
    with pytest.raises(ValueError, match="float grey image"):
        predictor.predict([np.zeros((40, 40), np.uint8)])  # 0-255 pixels would be read as 0-255 brightness
