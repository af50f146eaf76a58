"""DICOM as display images: modality LUT, window, MONOCHROME1, compressed syntaxes, one reading
path for caches, sources and prediction."""

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from fake_trees import dicom  # noqa: E402
from pydicom.uid import JPEG2000Lossless, RLELossless  # noqa: E402

from multimix.data.dicom import read_dicom  # noqa: E402
from multimix.data.io import is_dicom_file, read_image_file  # noqa: E402
from multimix.data.pixels import DEFAULT_MAX_MEGAPIXELS, ImageReadError, set_max_megapixels  # noqa: E402
from multimix.prediction.reader import read_input_image  # noqa: E402


@pytest.fixture
def gradient():
    return np.tile(np.linspace(0, 4000, 64).astype(np.uint16), (48, 1))  # 48 x 64, values 0..4000


def test_the_window_of_the_file_maps_black_to_white(tmp_path, gradient):
    path = dicom(tmp_path / "a.dcm", gradient, window=(2000.5, 2001))  # 1000..3000 -> 0..1
    image = read_dicom(path)
    assert image.shape == (48, 64) and image.dtype == np.float32
    values = gradient[0].astype(float)
    expected = np.clip((values - 1000.0) / 2000.0, 0, 1)
    np.testing.assert_allclose(image[0], expected, atol=1e-3)


def test_monochrome1_is_inverted_and_the_modality_lut_applied(tmp_path, gradient):
    plain = read_dicom(dicom(tmp_path / "m2.dcm", gradient, window=(2000.5, 2001)))
    inverted = read_dicom(dicom(tmp_path / "m1.dcm", gradient, photometric="MONOCHROME1", window=(2000.5, 2001)))
    np.testing.assert_allclose(inverted, 1.0 - plain, atol=1e-6)
    # slope 2, intercept -1000: stored 1000..2000 are output 1000..3000, the same window
    rescaled = read_dicom(
        dicom(tmp_path / "r.dcm", gradient // 2 + 500, window=(2000.5, 2001), slope=2.0, intercept=-1000.0)
    )
    np.testing.assert_allclose(rescaled, plain, atol=2e-3)


def test_the_voi_lut_functions_of_the_standard_are_applied(tmp_path, gradient):
    """PS3.3 C.11.2.1.3: LINEAR_EXACT maps c -/+ w/2 to black and white (no half-pixel shift);
    SIGMOID is 1 / (1 + exp(-4 (x - c) / w)), as a fraction of the output range."""
    values = gradient[0].astype(float)
    exact = read_dicom(dicom(tmp_path / "e.dcm", gradient, window=(2000.0, 2000.0), voi_function="LINEAR_EXACT"))
    np.testing.assert_allclose(exact[0], np.clip((values - 1000.0) / 2000.0, 0, 1), atol=1e-6)
    sigmoid = read_dicom(dicom(tmp_path / "s.dcm", gradient, window=(2000.0, 1000.0), voi_function="SIGMOID"))
    np.testing.assert_allclose(sigmoid[0], 1.0 / (1.0 + np.exp(-4.0 * (values - 2000.0) / 1000.0)), atol=1e-6)
    assert 0.0 < sigmoid.min() < 0.001 and 0.999 < sigmoid.max() < 1.0  # a sigmoid never reaches its ends
    # LINEAR (the default) shifts by half a pixel: c - 0.5 -/+ (w - 1) / 2, here 1000 and 2999
    linear = read_dicom(dicom(tmp_path / "l.dcm", gradient, window=(2000.0, 2000.0)))
    np.testing.assert_allclose(linear[0], np.clip((values - 1000.0) / 1999.0, 0, 1), atol=1e-6)


def test_a_window_the_standard_does_not_allow_is_named(tmp_path, gradient):
    with pytest.raises(ImageReadError, match=r"bad\.dcm: cannot apply the file's LUT or window.*Window Width"):
        read_dicom(dicom(tmp_path / "bad.dcm", gradient, window=(2000.0, 0.0)))


def test_without_a_window_the_percentile_window_is_used(tmp_path, gradient):
    image = read_dicom(dicom(tmp_path / "nowin.dcm", gradient))
    assert image.min() == 0.0 and image.max() == 1.0
    assert np.all(np.diff(image[0]) >= 0)  # monotone: brighter stored values stay brighter


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless])
def test_compressed_files_decode_to_the_same_pixels(tmp_path, gradient, syntax):
    pytest.importorskip("openjpeg") if syntax == JPEG2000Lossless else None
    path = dicom(tmp_path / "plain.dcm", gradient, window=(2000.5, 2001))
    ds = pydicom.dcmread(path)
    ds.compress(syntax)
    ds.save_as(tmp_path / "packed.dcm")
    np.testing.assert_allclose(read_dicom(tmp_path / "packed.dcm"), read_dicom(path), atol=1e-6)


def test_one_reading_path_for_caches_sources_and_prediction(tmp_path, gradient):
    path = dicom(tmp_path / "a.dcm", gradient, window=(2000.5, 2001))
    no_suffix = tmp_path / "IM0001"
    no_suffix.write_bytes(path.read_bytes())  # PACS exports often have no extension
    assert is_dicom_file(no_suffix) and not is_dicom_file(tmp_path / "none.png")
    reference = read_dicom(path)
    for image in (read_image_file(str(path)), read_image_file(str(no_suffix)), read_input_image(no_suffix)):
        np.testing.assert_array_equal(image, reference)


def test_bad_dicoms_are_named(tmp_path, gradient):
    with pytest.raises(ImageReadError, match="without pixel data"):
        read_dicom(dicom(tmp_path / "report.dcm", gradient, pixel_data=False))
    (tmp_path / "broken.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"garbage")
    with pytest.raises(ImageReadError, match="broken.dcm"):
        read_dicom(tmp_path / "broken.dcm")
    set_max_megapixels(0.001)
    try:
        with pytest.raises(ImageReadError, match="megapixels"):
            read_dicom(dicom(tmp_path / "big.dcm", gradient))
    finally:
        set_max_megapixels(DEFAULT_MAX_MEGAPIXELS)
