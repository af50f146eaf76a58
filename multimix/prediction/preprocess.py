"""The network's input from an image: exactly what ``multimix predict``, the web app and the
evaluation of a cached image feed a trained model (a public contract; the export's JSON lists
the same steps as parameters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from multimix.data.dicom import COLOUR_LUMINANCE
from multimix.data.jsrt_raw import JSRT_MAX, JSRT_SIDE
from multimix.data.pixels import READ_WINDOW_PERCENTILES
from multimix.data.resizing import resize_image
from multimix.data.transforms import CLAHE_CLIP, CLAHE_TILES, WINDOW_PERCENTILES, XrayTransform, eval_transform
from multimix.prediction.reader import read_input_image

ImageInput = np.ndarray | str | Path

# the version of :func:`preprocessing_steps`' layout; raised when a step's meaning changes
PREPROCESSING_FORMAT = 1
# scikit-image's rgb2gray (ITU-R BT.709 luma), which colour rasters go through
RASTER_LUMINANCE = (0.2125, 0.7154, 0.0721)


def load_grey(image: ImageInput) -> np.ndarray:
    """A float ``(H, W)`` grey image in ``[0, 1]``: ``image`` itself when it is one, else the file
    read as ``predict`` reads it (PNG/JPEG of any bit depth, DICOM with its window, raw JSRT)."""
    if isinstance(image, (str, Path)):
        return read_input_image(image)
    array = np.asarray(image)
    if array.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {array.shape}")
    if array.dtype.kind not in "fc" and array.dtype != np.bool_:
        raise ValueError(
            f"expected a float grey image in [0, 1], got dtype {array.dtype}; "
            "read files with multimix.prediction.read_input_image, or divide by the bit depth's maximum"
        )
    return array.astype(np.float32, copy=False)


def preprocess(
    image: ImageInput, *, image_size: int, intensity: str = "none", transform: XrayTransform | None = None
) -> torch.Tensor:
    """The ``(1, image_size, image_size)`` float32 network input of ``image`` (a file path or a
    float ``(H, W)`` array in ``[0, 1]``): anti-aliased bilinear resize (scikit-image, order 1),
    rounded to float16 as the caches store it, then the run's intensity standardisation
    (``data.intensity``). ``image_size`` and ``intensity`` are the checkpoint's
    (:attr:`multimix.prediction.Predictor.image_size`)."""
    pixels = load_grey(image)
    transform = transform or eval_transform(image_size, intensity=intensity)
    return transform(resize_image(pixels, image_size).astype(np.float32))[0]


def preprocessing_steps(image_size: int, intensity: str = "none") -> dict[str, Any]:
    """Every step from a file to the network's input, as parameters (what ``multimix export``
    writes beside a graph): enough to re-implement :func:`preprocess` outside Python, as
    ``examples/preprocess_without_multimix.py`` does with numpy alone."""
    return {
        "format": PREPROCESSING_FORMAT,
        "steps": [
            {"step": "read", **_read_rules()},
            _resize_rule(image_size),
            {"step": "round", "dtype": "float16", "then": "float32", "why": "the training caches store float16"},
            _intensity_rule(intensity),
        ],
        "input": {"shape": [1, 1, image_size, image_size], "dtype": "float32", "layout": "NCHW, one grey channel"},
    }


def _read_rules() -> dict[str, Any]:
    return {
        "output": "grey float32 (H, W) in [0, 1], dark air and bright bone",
        "format_by": "the file's first bytes (a PNG named .dcm is a PNG)",
        "raster": {
            "formats": ["PNG", "JPEG", "GIF", "TIFF", "BMP"],
            "integer_pixels": "value / the dtype's maximum (uint8: 255, uint16: 65535)",
            "colour": {"luminance_weights_rgb": list(RASTER_LUMINANCE), "alpha": "dropped, not composited"},
            "exif_orientation": "applied",
            "frame": 0,
        },
        "jsrt_raw": {
            "suffix": ".IMG",
            "shape": [JSRT_SIDE, JSRT_SIDE],
            "dtype": ">u2 (big-endian unsigned 16-bit, no header)",
            "value": f"1 - value / {JSRT_MAX} (film density to display polarity)",
            "window_percentiles": list(READ_WINDOW_PERCENTILES),
        },
        "dicom": {
            "modality_lut": "pydicom.pixels.apply_modality_lut (rescale slope and intercept, or the LUT)",
            "voi": "pydicom.pixels.apply_voi_lut(prefer_lut=True, index=0): the VOI LUT Sequence, else the first "
            "window with the VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID (PS3.3 C.11.2)",
            "scale": "linearly from the VOI transform's output range (a LUT's smallest to largest entry; a "
            "window's output for values far below and above it) to [0, 1]",
            "without_voi_window_percentiles": list(READ_WINDOW_PERCENTILES),
            "monochrome1": "inverted (1 - value) after scaling",
            "frame": 0,
            "colour": {"luminance_weights_rgb": list(COLOUR_LUMINANCE)},
        },
        "window_rule": "(x - low) / (high - low) clipped to [0, 1]; percentiles by linear interpolation "
        "(numpy's default); a flat image (high <= low) is black",
    }


def _resize_rule(image_size: int) -> dict[str, Any]:
    return {
        "step": "resize",
        "implementation": "skimage.transform.resize(image, size, order=1, anti_aliasing=True, preserve_range=True)",
        "size": [image_size, image_size],
        "keep_aspect_ratio": False,
        "anti_aliasing": {
            "filter": "separable gaussian, per axis",
            "sigma": "max(0, (input side / output side - 1) / 2); no filter where it is 0",
            "radius": "int(4 * sigma + 0.5)",
            "boundary": "mirror (d c b | a b c d | c b a)",
        },
        "interpolation": {
            "kind": "linear, separable",
            "sample_position": "(output index + 0.5) * input side / output side - 0.5",
            "boundary": "mirror",
        },
        "clip": "to the input image's own minimum and maximum",
        "precision": "float32",
    }


def _intensity_rule(intensity: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"step": "intensity", "mode": intensity}
    if intensity in ("window", "clahe"):
        rule["window_percentiles"] = list(WINDOW_PERCENTILES)
    if intensity == "clahe":
        rule["clahe"] = {"implementation": "albumentations.CLAHE", "clip_limit": CLAHE_CLIP, "tiles": list(CLAHE_TILES)}
    if intensity == "equalize":
        rule["equalize"] = {"implementation": "albumentations.Equalize (histogram equalisation)"}
    if intensity == "none":
        rule["note"] = "nothing: the rounded image is the input"
    return rule
