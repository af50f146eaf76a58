"""Raw JSRT ``.IMG`` files: headerless 12-bit film densities, turned into display images."""

from __future__ import annotations

import os

import numpy as np

from multimix.data.pixels import READ_WINDOW_PERCENTILES, ImageReadError, percentile_window

JSRT_SIDE = 2048
JSRT_MAX = 4095  # 12-bit detector values stored in 16-bit words


def read_jsrt_raw(path: str) -> np.ndarray:
    """Decode a raw JSRT ``.IMG`` file into float32 ``(2048, 2048)`` in ``[0, 1]``.

    The JSRT byte format has no header: 2048 x 2048 unsigned 16-bit big-endian words holding
    12-bit values (0..4095) where a *high* value is *dark* (film density). The pixels are

    1. flipped to display polarity, ``1 - value / 4095``, so air and lungs come out dark and
       bone bright, like every other source;
    2. windowed: raw JSRT is low-contrast (most pixels sit in a narrow band of the 12-bit
       range), so the intensities between the 0.5th and 99.5th percentiles
       (:data:`multimix.data.pixels.READ_WINDOW_PERCENTILES`) are rescaled linearly to ``[0, 1]``
       and the tails clipped. This is a per-image normalisation, robust to the few saturated pixels at the film border.

    Raises :class:`ImageReadError` naming the file if it is missing, has the wrong size
    (expected ``2048 * 2048 * 2`` bytes) or holds values above 4095.
    """
    expected = JSRT_SIDE * JSRT_SIDE * 2
    try:
        actual = os.path.getsize(path)
    except FileNotFoundError as err:
        raise ImageReadError(f"{path}: file not found") from err
    if actual != expected:
        raise ImageReadError(
            f"{path}: not a raw JSRT image: expected {expected} bytes "
            f"({JSRT_SIDE}x{JSRT_SIDE} 16-bit), got {actual} bytes"
        )
    values = np.fromfile(path, dtype=">u2").reshape(JSRT_SIDE, JSRT_SIDE)
    peak = int(values.max())
    if peak > JSRT_MAX:
        raise ImageReadError(f"{path}: value {peak} exceeds the 12-bit JSRT range 0..{JSRT_MAX}")
    display = 1.0 - values.astype(np.float32) / JSRT_MAX
    return percentile_window(display, READ_WINDOW_PERCENTILES)
