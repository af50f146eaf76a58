"""Feed an exported graph without multimix: the preprocessing re-implemented from the export's
JSON with numpy alone (Pillow decodes the PNG, onnxruntime runs the graph).

This is what a deployment outside Python ports, step by step: read the grey image, resize it as
``input.preprocessing`` describes (gaussian anti-aliasing, linear interpolation, mirror
boundaries), round to float16, apply the intensity step. It agrees with ``multimix predict`` on
the class probabilities to 1e-5.

    multimix export --checkpoint runs/<run>/checkpoints/best.pt --format onnx --out model.onnx
    python examples/preprocess_without_multimix.py --graph model.onnx image.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def read_grey_png(path: str | Path) -> np.ndarray:
    """A grey PNG (8 or 16 bit) as float ``(H, W)`` in ``[0, 1]``: value / the dtype's maximum."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image)
    if pixels.ndim != 2:
        raise ValueError(f"{path}: this example reads grey PNGs; convert colour with the JSON's luminance weights")
    return pixels.astype(np.float64) / np.iinfo(pixels.dtype).max


def _mirror(position: np.ndarray, side: int) -> np.ndarray:
    """Positions reflected into ``[0, side - 1]`` about the edge pixels (d c b | a b c d | c b a)."""
    if side == 1:
        return np.zeros_like(position)
    period = 2 * (side - 1)
    position = np.abs(position) % period
    return np.where(position > side - 1, period - position, position)


def gaussian_along(image: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """A gaussian of ``sigma`` along ``axis``, radius ``int(4 sigma + 0.5)``, mirror boundary."""
    if sigma <= 1e-15:
        return image
    radius = int(4.0 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * offsets**2 / sigma**2)
    weights /= weights.sum()
    side = image.shape[axis]
    taps = _mirror(np.arange(side)[None, :] + offsets[:, None], side).astype(int)  # (taps, side)
    moved = np.moveaxis(image, axis, 0)
    return np.moveaxis(np.tensordot(weights, moved[taps], axes=(0, 0)), 0, axis)


def linear_along(image: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Linear interpolation to ``size`` samples along ``axis`` at ``(j + 0.5) * in / out - 0.5``."""
    side = image.shape[axis]
    position = _mirror((np.arange(size) + 0.5) * (side / size) - 0.5, side)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, side - 1)
    weight = (position - low).reshape((-1,) + (1,) * (image.ndim - 1))
    moved = np.moveaxis(image, axis, 0)
    return np.moveaxis(moved[low] * (1.0 - weight) + moved[high] * weight, 0, axis)


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """The export's resize step: per-axis gaussian of sigma ``max(0, (in/out - 1) / 2)``, then
    linear interpolation, clipped to the image's own range."""
    out = image
    for axis in (0, 1):
        out = gaussian_along(out, max(0.0, (image.shape[axis] / size - 1.0) / 2.0), axis)
    for axis in (0, 1):
        out = linear_along(out, size, axis)
    return np.clip(out, image.min(), image.max())


def percentile_window(image: np.ndarray, low_pct: float, high_pct: float) -> np.ndarray:
    low, high = np.percentile(image, (low_pct, high_pct))
    if high <= low:
        return image
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def network_input(grey: np.ndarray, preprocessing: dict) -> np.ndarray:
    """The ``(1, 1, S, S)`` float32 input from a grey image, following ``preprocessing``'s steps."""
    steps = {step["step"]: step for step in preprocessing["steps"]}
    side = steps["resize"]["size"][0]
    image = resize(grey, side).astype(np.float32)
    image = image.astype(steps["round"]["dtype"]).astype(np.float32)
    mode = steps["intensity"]["mode"]
    if mode == "window":
        image = percentile_window(image, *steps["intensity"]["window_percentiles"]).astype(np.float32)
    elif mode != "none":
        raise ValueError(f"intensity {mode!r} needs its library ({steps['intensity']}); this example does none/window")
    return image[None, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", required=True, help="the exported .onnx; its .json must sit beside it")
    parser.add_argument("images", nargs="+", help="grey PNG files")
    args = parser.parse_args()
    import onnxruntime

    description = json.loads(Path(f"{args.graph}.json").read_text())
    session = onnxruntime.InferenceSession(args.graph, providers=["CPUExecutionProvider"])
    classes = description["outputs"]["class_probs"]["classes"]
    threshold = description["decision"]["operating_point"]["threshold"]
    for path in args.images:
        inputs = network_input(read_grey_png(path), description["input"]["preprocessing"])
        probabilities, _lungs = session.run(None, {description["input"]["name"]: inputs})
        positive = float(probabilities[0, -1])
        call = classes[-1] if positive >= threshold else classes[0]
        print(f"{path}: {call} (p({classes[-1]}) {positive:.6f}, threshold {threshold:.3f})")


if __name__ == "__main__":
    main()
