"""Running a trained checkpoint on image files or uploaded bytes: read, predict, draw overlays.

Used by ``multimix predict`` and the web app (:mod:`multimix.serve`).
"""

from multimix.prediction.overlays import (
    boundary_overlay,
    mask_image,
    png_bytes,
    prediction_pictures,
    saliency_overlay,
    write_png,
)
from multimix.prediction.predictor import CLASS_NAMES, Prediction, Predictor
from multimix.prediction.preprocess import load_grey, preprocess
from multimix.prediction.reader import (
    IMAGE_SUFFIXES,
    decode_image_bytes,
    read_input_image,
    sniff_format,
)

__all__ = [
    "CLASS_NAMES",
    "IMAGE_SUFFIXES",
    "Prediction",
    "Predictor",
    "boundary_overlay",
    "decode_image_bytes",
    "load_grey",
    "mask_image",
    "png_bytes",
    "prediction_pictures",
    "preprocess",
    "read_input_image",
    "saliency_overlay",
    "sniff_format",
    "write_png",
]
