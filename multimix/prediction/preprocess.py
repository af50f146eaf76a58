"""The network's input from an image: exactly what ``multimix predict``, the web app and the
evaluation of a cached image feed a trained model (a public contract; the export's JSON lists
the same steps as parameters)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from multimix.data.resizing import resize_image
from multimix.data.transforms import XrayTransform, eval_transform
from multimix.prediction.reader import read_input_image

ImageInput = np.ndarray | str | Path


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
