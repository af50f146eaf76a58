"""Classifying inside the lungs: the box around a network's own lung mask, cropped and resized.

Pneumonia is in the lungs; what lies around them (the child's arms, the frame, a hospital's
markers and borders) is where a classifier finds shortcuts that do not travel between hospitals.
``model.cls_input: lung_crop`` gives the class head the box of the network's own predicted lungs
(cleaned to two solid regions away from the image's side edges,
:func:`~multimix.models.postprocess.clean_lung_mask`), widened by a margin on every side and
resized to the input size, at training, evaluation and prediction alike. An image without a
predicted lung keeps its whole frame. The boxes carry no gradient (the masks are thresholded);
the crop is a bilinear resampling (``torchvision.ops.roi_align``), so the input pixels still get
theirs.
"""

from __future__ import annotations

import numpy as np
import torch
from torchvision.ops import roi_align

from multimix.config.schema import CLS_INPUTS
from multimix.models.postprocess import clean_lung_masks

__all__ = ["CLS_INPUTS", "crop_to_boxes", "lung_boxes"]


def lung_boxes(seg_logits: torch.Tensor, *, margin: float = 0.1, threshold: float = 0.5) -> torch.Tensor:
    """``(B, 4)`` boxes ``(x1, y1, x2, y2)`` in pixels of the cleaned lung masks of ``(B, 1, H, W)``
    logits, each widened by ``margin`` of its own width and height on every side and kept inside
    the image; the whole image where no lung is predicted."""
    if not 0 <= margin < 1:
        raise ValueError(f"the lung-crop margin must lie in [0, 1), got {margin}")
    height, width = seg_logits.shape[-2:]
    masks = clean_lung_masks(
        (torch.sigmoid(seg_logits.detach().float()[:, 0]) >= threshold).cpu().numpy(), drop_edge_regions=True
    )
    boxes = np.tile(np.array([0.0, 0.0, width, height]), (len(masks), 1))
    for i, mask in enumerate(masks):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if rows.size == 0:
            continue
        x1, x2, y1, y2 = cols[0], cols[-1] + 1, rows[0], rows[-1] + 1
        dx, dy = margin * (x2 - x1), margin * (y2 - y1)
        boxes[i] = [max(0.0, x1 - dx), max(0.0, y1 - dy), min(width, x2 + dx), min(height, y2 + dy)]
    return torch.as_tensor(boxes, dtype=torch.float32, device=seg_logits.device)


def crop_to_boxes(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Each image's box resampled to the image's own size (bilinear, 2 samples per output pixel)."""
    height, width = images.shape[-2:]
    index = torch.arange(len(images), dtype=boxes.dtype, device=boxes.device)[:, None]
    rois = torch.cat([index, boxes.to(images.dtype)], dim=1)
    return roi_align(images, rois, output_size=(height, width), spatial_scale=1.0, sampling_ratio=2, aligned=True)
