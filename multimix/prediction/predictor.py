"""A trained checkpoint as a predictor: preprocessing from its own config, outputs at the input's resolution."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from multimix.config.run_info import RunInfo
from multimix.data.records import CLASS_NAMES
from multimix.data.transforms import eval_transform
from multimix.evaluation.inference import flip_averaged, output_probabilities
from multimix.metrics.operating_point import OperatingPoint
from multimix.models.factory import model_from_checkpoint, trained_model_name
from multimix.models.postprocess import clean_lung_mask
from multimix.prediction.preprocess import ImageInput, load_grey, preprocess
from multimix.utils.checkpoints import load_checkpoint
from multimix.utils.device import resolve_device


@dataclass
class Prediction:
    """What the model says about one image; fields the model cannot produce are ``None``.

    Attributes:
        probabilities: ``(num_classes,)`` softmax probabilities.
        lung_mask: boolean ``(H, W)`` lung mask at the input's resolution.
        saliency: ``(H, W)`` saliency of the predicted class in ``[0, 1]``, input resolution.
        embedding: the pooled encoder feature (for the reference map).
        threshold: the decision threshold on p(pneumonia) of a two-class model (the checkpoint's
            operating point); other models take the most probable class.
    """

    probabilities: np.ndarray | None = None
    lung_mask: np.ndarray | None = None
    saliency: np.ndarray | None = None
    embedding: np.ndarray | None = None
    threshold: float = 0.5
    class_names: tuple[str, ...] = CLASS_NAMES

    @property
    def predicted_class(self) -> int | None:
        if self.probabilities is None:
            return None
        if len(self.probabilities) == 2:
            return int(self.probabilities[1] >= self.threshold)
        return int(np.argmax(self.probabilities))

    @property
    def class_name(self) -> str | None:
        index = self.predicted_class
        if index is None:
            return None
        return self.class_names[index] if index < len(self.class_names) else f"class {index}"

    @property
    def lung_fraction(self) -> float | None:
        """Share of the image's pixels inside the predicted lung mask."""
        return None if self.lung_mask is None else float(self.lung_mask.mean())


class Predictor:
    """Load a run checkpoint once and predict on float ``[0, 1]`` grey images of any size.

    Every image is resized to the checkpoint's training size (``data.image_size`` of its stored
    config) with the evaluation transform, the same path its validation images took; masks and
    saliency maps are resized back to the image's own size. Calls are serialised by a lock, so
    one predictor can serve several threads.

    Args:
        checkpoint: a ``best.pt``/``last.pt`` of train.py, finetune.py or distill.py (loaded
            with ``weights_only=True``).
        device: ``auto``, ``cpu``, ``cuda``...
        seg_threshold: lung probability above which a pixel is lung.
        clean_masks: keep the two largest lung regions and fill their holes
            (:func:`~multimix.models.postprocess.clean_lung_mask`); ``None`` follows the
            checkpoint's ``inference.clean_masks``.
        class_threshold: decision threshold on p(pneumonia); ``None`` takes the checkpoint's
            operating point (``multimix adapt`` / ``multimix calibrate``; 0.5 when it has none).
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "auto",
        seg_threshold: float = 0.5,
        clean_masks: bool | None = None,
        class_threshold: float | None = None,
    ) -> None:
        self.checkpoint = Path(checkpoint)
        self.device = resolve_device(device)
        state = load_checkpoint(self.checkpoint, map_location=self.device)
        self.model, self.config = model_from_checkpoint(state, origin=str(self.checkpoint))
        self.model.to(self.device).eval()
        self.metrics: dict[str, float] = dict(state.get("metrics") or {})
        # the checkpoint's own class names (its model card's)
        self.class_names: tuple[str, ...] = RunInfo.from_checkpoint(state, origin=str(self.checkpoint)).class_names
        self.step: int | None = state.get("step")
        self.image_size = self.config.data.image_size
        self.seg_threshold = seg_threshold
        self.clean_masks = self.config.inference.clean_masks if clean_masks is None else clean_masks
        self.drop_edge_regions = self.config.inference.drop_edge_regions
        self.flip_tta = self.config.inference.flip_tta
        self.operating_point = (
            OperatingPoint.from_checkpoint(state)
            if class_threshold is None
            else OperatingPoint(class_threshold, "manual", "the command line")
        )
        self._transform = eval_transform(self.image_size, intensity=self.config.data.intensity)
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return trained_model_name(self.model, self.config)

    def describe(self) -> dict[str, Any]:
        """The model for people: name, checkpoint, image size, classes, outputs, metrics, config."""
        return {
            "name": self.name,
            "checkpoint": str(self.checkpoint),
            "step": self.step,
            "image_size": self.image_size,
            "classes": list(self.class_names),
            "operating_point": self.operating_point.to_dict(),
            "outputs": {"class": self.model.has_cls_head, "lung_mask": self.model.has_seg_head},
            "validation_metrics": self.metrics,
            "config": self.config.to_dict(),
        }

    def preprocess(self, image: ImageInput) -> torch.Tensor:
        """``(1, S, S)`` model input from a file path or a float ``(H, W)`` image in ``[0, 1]``
        (:func:`multimix.prediction.preprocess` at this checkpoint's size and intensity rule)."""
        return preprocess(image, image_size=self.image_size, transform=self._transform)

    @torch.no_grad()
    def predict(
        self, images: Sequence[ImageInput], output_shapes: Sequence[tuple[int, int]] | None = None
    ) -> list[Prediction]:
        """Predictions for a batch of images (file paths, or grey float arrays in ``[0, 1]``, any
        sizes); masks and saliency maps come at each image's own shape, or at ``output_shapes``
        when given (e.g. a display size). A file that cannot be read raises ``ImageReadError``
        naming it."""
        if not images:
            return []
        pixels = [load_grey(image) for image in images]
        shapes = [image.shape for image in pixels] if output_shapes is None else list(output_shapes)
        batch = torch.stack([self.preprocess(image) for image in pixels]).to(self.device)
        with self._lock:
            out = self.model(batch, return_features=True)
            saliency = out.saliency
            if saliency is None and self.model.has_cls_head:
                saliency = self.model.saliency(batch)
            cls_probs, lung = flip_averaged(self.model, batch, out) if self.flip_tta else output_probabilities(out)
        probabilities = None if cls_probs is None else cls_probs.cpu().numpy()
        return [
            Prediction(
                probabilities=None if probabilities is None else probabilities[i],
                lung_mask=None if lung is None else self._mask(lung[i], shape),
                saliency=None if saliency is None else np.clip(_resize(saliency[i].float(), shape), 0.0, 1.0),
                embedding=None if out.embedding is None else out.embedding[i].float().cpu().numpy(),
                threshold=self.operating_point.threshold,
                class_names=self.class_names,
            )
            for i, shape in enumerate(shapes)
        ]

    def _mask(self, lung: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
        mask = _resize(lung, shape) >= self.seg_threshold
        return clean_lung_mask(mask, drop_edge_regions=self.drop_edge_regions) if self.clean_masks else mask


def _resize(channel_map: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """A ``(1, s, s)`` map resized bilinearly to ``shape`` ``(H, W)``."""
    resized = F.interpolate(channel_map[None], size=tuple(shape), mode="bilinear", align_corners=False)
    return resized[0, 0].cpu().numpy()
