"""What an evaluation produces: per-domain results of each checkpoint, the settings that made
them, and the example images the figures show."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from multimix.config.schema import Config
from multimix.data.records import Record
from multimix.evaluation.inference import ImageResults, infer
from multimix.evaluation.summary import BootstrapSettings
from multimix.models.factory import TrainedModel

DOMAIN_NAMES = {"in": "in-domain", "cross": "cross-domain"}


@dataclass
class SaliencyExamples:
    """Correctly and wrongly classified images with the saliency of the predicted class."""

    images: np.ndarray  # (K, H, W)
    saliency: np.ndarray  # (K, H, W)
    labels: np.ndarray  # (K,)
    predictions: np.ndarray  # (K,)
    probabilities: np.ndarray  # (K,) probability of the predicted class


@dataclass
class DomainResult:
    """One model on one evaluation set."""

    name: str
    records: list[Record]
    results: ImageResults
    summary: dict
    saliency: SaliencyExamples | None = None


@dataclass
class ModelResult:
    """One checkpoint evaluated on every requested set."""

    label: str  # unique row name in tables and figures
    model_name: str  # the paper's name of the variant (``MultiMix``, ``UMTLS-SSL``, ...)
    checkpoint: str
    config: Config
    domains: dict[str, DomainResult] = field(default_factory=dict)
    operating_point: str = "threshold 0.500 (default)"  # how the class decisions were made, for people

    @property
    def seg_labels(self) -> str:
        return str(self.config.data.seg_labels)

    @property
    def cls_labels(self) -> str:
        return str(self.config.data.cls_labels)


@dataclass(frozen=True)
class EvaluationSettings:
    """What to evaluate and how; ``None`` fields fall back to the run's own config."""

    domain: str = "all"  # in | cross | all
    sources: tuple[str, ...] = ()
    data_root: str | None = None
    image_size: int | None = None
    batch_size: int = 32
    device: str = "auto"
    threshold: float | None = None  # None: each checkpoint's operating point (0.5 when it has none)
    boot: BootstrapSettings = BootstrapSettings()
    num_samples: int = 4  # images per domain in the boundary and saliency figures
    clean_masks: bool | None = None  # None: the run's inference.clean_masks
    progress: bool = True


def pick_samples(records: Sequence[Record], k: int) -> list[str]:
    """``k`` images with a reference mask, the same for every model (a stable hash order of uids)."""
    masked = sorted((r.uid for r in records if r.has_mask), key=lambda u: zlib.crc32(u.encode()))
    return masked[:k]


def saliency_examples(
    model: TrainedModel,
    records: list[Record],
    results: ImageResults,
    k: int,
    *,
    image_size: int,
    device: torch.device,
    threshold: float,
    intensity: str = "none",
) -> SaliencyExamples | None:
    """Up to ``k`` correctly and ``k`` wrongly classified images with their saliency."""
    if results.prob_pneumonia is None:
        return None
    labeled = np.flatnonzero(results.labels >= 0)
    predicted = (results.prob_pneumonia >= threshold).astype(int)
    order = sorted(labeled, key=lambda i: zlib.crc32(results.uids[i].encode()))
    right = [i for i in order if predicted[i] == results.labels[i]][:k]
    wrong = [i for i in order if predicted[i] != results.labels[i]][:k]
    chosen = right + wrong
    if not chosen:
        return None
    kept = infer(
        model,
        [records[i] for i in chosen],
        image_size=image_size,
        intensity=intensity,
        device=device,
        full_metrics=False,
        keep=range(len(chosen)),
    )
    samples = [kept.samples[j] for j in range(len(chosen))]
    probs = results.prob_pneumonia[chosen]
    return SaliencyExamples(
        images=np.stack([s.image for s in samples]),
        saliency=np.stack([s.saliency for s in samples if s.saliency is not None]),
        labels=results.labels[chosen],
        predictions=predicted[chosen],
        probabilities=np.where(predicted[chosen] == 1, probs, 1 - probs),
    )
