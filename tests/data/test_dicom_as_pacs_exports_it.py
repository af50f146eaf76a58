"""DICOM as a PACS exports it: files without a suffix, several frames, pixel data the header does
not describe, NaN rescale values, and names that do not match the content."""

import csv

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from fake_trees import dicom, png  # noqa: E402

from multimix.data.dicom import read_dicom  # noqa: E402
from multimix.data.io import read_image_file  # noqa: E402
from multimix.data.pixels import DEFAULT_MAX_MEGAPIXELS, ImageReadError, set_max_megapixels  # noqa: E402
from multimix.data.sources import scan_source  # noqa: E402
from multimix.prediction.batch import expand_inputs, predict_files  # noqa: E402
from multimix.prediction.reader import read_input_image  # noqa: E402


@pytest.fixture
def gradient():
    return np.tile(np.linspace(0, 4000, 64).astype(np.uint16), (48, 1))  # 48 x 64


def rewrite(path, **header):
    """The DICOM at ``path`` with some header values or its pixel data replaced."""
    ds = pydicom.dcmread(path)
    for key, value in header.items():
        setattr(ds, key, value)
    ds.save_as(path)
    return path


def test_pixel_data_longer_or_shorter_than_the_header_says_is_refused(tmp_path, gradient):
    extra = dicom(tmp_path / "extra.dcm", gradient)
    rewrite(extra, PixelData=gradient.tobytes() * 2)  # a second frame's bytes, no NumberOfFrames
    with pytest.raises(ImageReadError, match=r"extra.dcm: its pixel data holds 12288 bytes.*need 6144"):
        read_dicom(extra)
    truncated = rewrite(dicom(tmp_path / "cut.dcm", gradient), PixelData=gradient.tobytes()[:1000])
    with pytest.raises(ImageReadError, match="holds 1000 bytes") as raised:
        read_dicom(truncated)
    assert "compressed" not in str(raised.value)  # an uncompressed file is not sent to install decoders
    tiny = rewrite(dicom(tmp_path / "tiny.dcm", np.zeros((1, 1), np.uint16)), PixelData=b"\0" * 6)
    with pytest.raises(ImageReadError, match="tiny.dcm: its pixel data holds 6 bytes"):
        read_dicom(tiny)


def test_a_bad_file_is_an_error_row_and_the_rest_of_the_folder_is_predicted(trained_checkpoint, tmp_path, gradient):
    folder = tmp_path / "pacs"
    rewrite(dicom(folder / "tiny.dcm", np.zeros((1, 1), np.uint16)), PixelData=b"\0" * 6)
    dicom(folder / "good.dcm", gradient)
    report = predict_files(expand_inputs([str(folder)]), trained_checkpoint, tmp_path / "out", device="cpu")
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in csv.DictReader(report.csv_path.open())}
    assert rows["good.dcm"]["status"] == "ok" and rows["tiny.dcm"]["status"] == "error"
    assert "pixel data holds 6 bytes" in rows["tiny.dcm"]["error"]


def test_every_frame_counts_against_the_megapixel_limit_and_only_the_first_is_returned(tmp_path, gradient):
    second = (4000 - gradient).astype(np.uint16)
    frames = rewrite(
        dicom(tmp_path / "frames.dcm", gradient),
        NumberOfFrames=3,
        PixelData=(gradient.tobytes() + second.tobytes()) * 2,
    )
    with pytest.raises(ImageReadError, match="frames.dcm: its pixel data holds 24576 bytes"):
        read_dicom(frames)  # 4 frames' bytes for 3 declared
    rewrite(frames, PixelData=gradient.tobytes() + second.tobytes() + gradient.tobytes())
    single = read_dicom(dicom(tmp_path / "single.dcm", gradient))
    np.testing.assert_array_equal(read_dicom(frames), single)
    set_max_megapixels(0.008)  # one frame (3,072 pixels) fits, three (9,216) do not
    try:
        read_dicom(tmp_path / "single.dcm")
        with pytest.raises(ImageReadError, match=r"frames.dcm: declares 3 frames of 64x48 pixels"):
            read_dicom(frames)
    finally:
        set_max_megapixels(DEFAULT_MAX_MEGAPIXELS)


@pytest.mark.filterwarnings("ignore:Invalid value for VR DS")
@pytest.mark.parametrize("key", ["RescaleSlope", "RescaleIntercept"])
def test_a_rescale_that_is_not_a_number_is_refused(tmp_path, gradient, key):
    path = rewrite(dicom(tmp_path / "nan.dcm", gradient), **{key: "NaN"})
    with pytest.raises(ImageReadError, match=f"nan.dcm: DICOM {key} is .*not a finite number"):
        read_dicom(path)


def test_dicom_without_a_suffix_is_read_everywhere(tmp_path, gradient):
    """PACS names: ``IM000001`` and ``1.2.840.113619.2.55.3`` (a numeric 'suffix')."""
    root = tmp_path / "site"
    for name in ("IM000001", "1.2.840.113619.2.55.3"):
        dicom(root / "images" / name, gradient)
    png(root / "masks" / "IM000001.png", value=255)
    (root / "images" / "notes").write_text("not an image")
    expected = read_dicom(root / "images" / "IM000001")
    np.testing.assert_array_equal(read_image_file(str(root / "images" / "1.2.840.113619.2.55.3")), expected)
    np.testing.assert_array_equal(read_input_image(root / "images" / "IM000001"), expected)
    found = {p.name for p in expand_inputs([str(root / "images")])}
    assert found == {"IM000001", "1.2.840.113619.2.55.3"}
    scan = scan_source(f"folder:{root}", on_error="skip")
    assert sorted(r.uid.rsplit("/", 1)[-1] for r in scan.records) == ["1.2.840.113619.2.55.3", "IM000001"]
    assert [s.path.rsplit("/", 1)[-1] for s in scan.skipped] == ["notes"]
    (root / "labels.csv").write_text("path,label\nimages/IM000001,normal\nimages/1.2.840.113619.2.55.3,pneumonia\n")
    assert len(scan_source(f"csv:{root / 'labels.csv'}").records) == 2


def test_the_content_decides_not_the_name(tmp_path):
    """A PNG named ``.dcm`` is a PNG; bytes named ``.dcm`` that are neither say they are no DICOM."""
    picture = png(tmp_path / "real.png", value=200)
    renamed = tmp_path / "renamed.dcm"
    renamed.write_bytes(picture.read_bytes())
    np.testing.assert_array_equal(read_input_image(renamed), read_input_image(picture))
    np.testing.assert_array_equal(read_image_file(str(renamed)), read_image_file(str(picture)))
    (tmp_path / "junk.dcm").write_bytes(b"\x01" * 400)
    with pytest.raises(ImageReadError, match="junk.dcm: not a DICOM file \\(no 'DICM' signature") as raised:
        read_input_image(tmp_path / "junk.dcm")
    assert "force" not in str(raised.value)
