"""Batched inference over held-out records: per-image class probabilities, masks, metrics, embeddings.

One forward pass per batch gives the class logits, the segmentation, the encoder embedding and
(for models with the bridge) the saliency. Full-resolution outputs are kept only for the few
images a figure needs (``keep``); everything else is reduced to per-image numbers on the fly, so
memory stays flat however large the evaluation set is.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from multimix.data.records import Record
from multimix.data.streams import EvalDataset
from multimix.metrics import dice_per_image, segmentation_metrics_per_image
from multimix.models.factory import TrainedModel
from multimix.models.output import TaskOutput
from multimix.models.postprocess import clean_lung_masks, mask_topology


@dataclass
class Sample:
    """Full-resolution outputs of one image, kept for figures."""

    image: np.ndarray  # (H, W) float32 in [0, 1]
    reference: np.ndarray | None  # (H, W) bool lung mask, None when the record has none
    prediction: np.ndarray | None  # (H, W) bool predicted lung mask
    saliency: np.ndarray | None  # (H, W) float32 in [0, 1]


@dataclass
class ImageResults:
    """Per-image outputs of :func:`infer`; row ``i`` belongs to ``uids[i]``.

    ``seg`` maps a metric name (``dice``, ``jaccard``, ``ssim``, ``hd``, ``hd95``, ``precision``,
    ``recall`` and, where pixel spacing is known, ``hd_mm``, ``hd95_mm``) to an ``(N,)`` array
    that is NaN exactly where the record has no reference mask (or, for the mm metrics, no
    known spacing).
    """

    uids: list[str]
    sources: list[str]
    labels: np.ndarray  # (N,) class index, -1 where the record has none
    prob_pneumonia: np.ndarray | None  # (N,) None for a model without a class head
    has_mask: np.ndarray  # (N,) bool
    pred_fraction: np.ndarray | None = None  # (N,) share of pixels predicted as lung
    pred_regions: np.ndarray | None = None  # (N,) connected regions of the predicted mask (2 = two lungs)
    pred_holes: np.ndarray | None = None  # (N,) holes inside them
    seg: dict[str, np.ndarray] = field(default_factory=dict)
    embeddings: np.ndarray | None = None  # (N, D) globally pooled bottleneck
    samples: dict[int, Sample] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.uids)


def eval_spacing(record: Record, image_size: int) -> tuple[float, float] | None:
    """Pixel spacing in mm at the evaluated ``image_size``, or ``None`` when the source gives none.

    Sources publish either the physical field of the image (``meta["field_of_view_mm"]``, JSRT,
    whose PNG releases come at several resolutions) or the pixel size of the files
    (``meta["pixel_spacing_mm"]``, Montgomery), which needs the file's ``meta["original_shape"]``
    recorded by the cache.
    """
    fov = record.meta.get("field_of_view_mm")
    if fov is not None:
        return (float(fov[0]) / image_size, float(fov[1]) / image_size)
    spacing, shape = record.meta.get("pixel_spacing_mm"), record.meta.get("original_shape")
    if spacing is None or shape is None:
        return None
    return (float(spacing[0]) * shape[0] / image_size, float(spacing[1]) * shape[1] / image_size)


def _spacings(records: Sequence[Record], image_size: int) -> np.ndarray | None:
    rows = [eval_spacing(r, image_size) for r in records]
    if all(row is None for row in rows):
        return None
    return np.array([row if row is not None else (np.nan, np.nan) for row in rows], dtype=np.float64)


PIXEL_METRICS = ("dice", "jaccard", "ssim", "hd", "hd95", "precision", "recall")
MM_METRICS = ("hd_mm", "hd95_mm")


def _batch_seg_metrics(
    pred: np.ndarray, ref: np.ndarray, has_mask: np.ndarray, spacing: np.ndarray | None, full: bool
) -> dict[str, np.ndarray]:
    """Every metric for every image of the batch (NaN where no reference mask), so the batches
    concatenate into aligned columns even when a batch holds no mask at all."""
    names = (*PIXEL_METRICS, *(MM_METRICS if spacing is not None else ())) if full else ("dice",)
    scores = {name: np.full(len(pred), np.nan) for name in names}
    if has_mask.any():
        if full:
            computed = segmentation_metrics_per_image(
                pred[has_mask], ref[has_mask], spacing=None if spacing is None else spacing[has_mask]
            )
        else:
            computed = {"dice": dice_per_image(pred[has_mask], ref[has_mask])}
        for name in names:
            scores[name][has_mask] = computed[name]
    return scores


def _saliency(model: TrainedModel, images: torch.Tensor, out_saliency: torch.Tensor | None) -> torch.Tensor | None:
    """The bridge's saliency when the model has one, else computed here for a class head."""
    if out_saliency is not None:
        return out_saliency
    if not model.has_cls_head:
        return None
    return model.saliency(images)


@torch.no_grad()
def infer(
    model: TrainedModel,
    records: Sequence[Record],
    *,
    image_size: int,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    seg_threshold: float = 0.5,
    full_metrics: bool = True,
    keep: Collection[int] = (),
    progress: bool = False,
    intensity: str = "none",
    postprocess: bool = False,
    drop_edge_regions: bool = False,
    flip_tta: bool = False,
) -> ImageResults:
    """Run ``model`` in eval mode over ``records``.

    Args:
        model: a :class:`~multimix.models.MultiMixNet` (any variant).
        records: the images; ones with a mask get segmentation metrics, ones with a label are
            classification examples.
        image_size: square evaluation size (the model's training size).
        batch_size: images per forward pass.
        device: where the model runs.
        seg_threshold: probability threshold of the lung mask.
        full_metrics: every segmentation metric (Dice, Jaccard, SSIM, HD, HD95, precision,
            recall; mm distances where spacing is known); ``False`` computes Dice only, which is
            all checkpoint selection needs.
        keep: record indices whose image, masks and saliency are returned in ``samples``.
        progress: show a progress bar.
        intensity: the intensity standardisation the model was trained with (``data.intensity``).
        postprocess: clean the predicted lung masks (two largest components, holes filled;
            :func:`~multimix.models.postprocess.clean_lung_mask`) before scoring them.
        drop_edge_regions: the clean-up also drops regions reaching the image's left or right edge.
        flip_tta: average the class probabilities and lung probabilities of each image and its
            mirror image (flipped back), as :func:`flip_averaged` does.
    """
    model.eval()
    keep = set(keep)
    spacings = _spacings(records, image_size) if full_metrics else None
    loader = DataLoader(EvalDataset(records, image_size, intensity=intensity), batch_size=batch_size, shuffle=False)
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    has_masks: list[np.ndarray] = []
    embeddings: list[np.ndarray] = []
    fractions: list[np.ndarray] = []
    topology: list[tuple[int, int]] = []
    seg: dict[str, list[np.ndarray]] = {}
    samples: dict[int, Sample] = {}
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False, unit="batch"):
        images = batch["image"].to(device)
        index = batch["index"].numpy()
        has_mask = batch["has_mask"].numpy().astype(bool)
        out = model(images, return_features=True)
        cls_probs, seg_probs = flip_averaged(model, images, out) if flip_tta else output_probabilities(out)
        labels.append(batch["label"].numpy())
        has_masks.append(has_mask)
        embeddings.append(out.required("embedding").float().cpu().numpy())
        if cls_probs is not None:
            probs.append(cls_probs[:, 1].cpu().numpy())
        pred = None
        if seg_probs is not None:
            pred = (seg_probs >= seg_threshold).cpu().numpy()[:, 0]
            if postprocess:
                pred = clean_lung_masks(pred, drop_edge_regions=drop_edge_regions)
            fractions.append(pred.mean(axis=(1, 2)))
            topology.extend(mask_topology(m) for m in pred)
            ref = batch["mask"].numpy()[:, 0] > 0.5
            spacing = None if spacings is None else spacings[index]
            for name, values in _batch_seg_metrics(pred, ref, has_mask, spacing, full_metrics).items():
                seg.setdefault(name, []).append(values)
        wanted = [row for row, i in enumerate(index) if int(i) in keep]
        if wanted:
            samples.update(_keep_samples(model, batch, images, out, pred, wanted, index))
    return ImageResults(
        uids=[r.uid for r in records],
        sources=[r.source for r in records],
        labels=np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64),
        prob_pneumonia=np.concatenate(probs) if probs else None,
        has_mask=np.concatenate(has_masks) if has_masks else np.zeros(0, dtype=bool),
        pred_fraction=np.concatenate(fractions) if fractions else None,
        pred_regions=np.array([t[0] for t in topology]) if topology else None,
        pred_holes=np.array([t[1] for t in topology]) if topology else None,
        seg={name: np.concatenate(parts) for name, parts in seg.items()},
        embeddings=np.concatenate(embeddings) if embeddings else None,
        samples=samples,
    )


def output_probabilities(out: TaskOutput) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(class probabilities (N, C), lung probabilities (N, 1, H, W))`` of one output (None where
    the network has no such head)."""
    cls = None if out.cls_logits is None else out.cls_logits.float().softmax(dim=1)
    seg = None if out.seg_logits is None else torch.sigmoid(out.seg_logits.float())
    return cls, seg


def flip_averaged(
    model: TrainedModel, images: torch.Tensor, out: TaskOutput | None = None
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Test-time flip averaging: the mean of :func:`output_probabilities` of ``images`` and of their
    left-right mirror images (whose lung maps are mirrored back), so a prediction cannot hinge on
    which way round the patient stands. ``out`` is the network's output on ``images`` if known."""
    first = output_probabilities(out if out is not None else model(images))
    mirrored = output_probabilities(model(images.flip(-1)))
    cls = None if first[0] is None or mirrored[0] is None else (first[0] + mirrored[0]) / 2
    seg = None if first[1] is None or mirrored[1] is None else (first[1] + mirrored[1].flip(-1)) / 2
    return cls, seg


def _keep_samples(model, batch, images, out, pred, rows, index) -> dict[int, Sample]:
    saliency = _saliency(model, images[rows], None if out.saliency is None else out.saliency[rows])
    kept = {}
    for k, row in enumerate(rows):
        kept[int(index[row])] = Sample(
            image=batch["image"][row, 0].numpy().astype(np.float32),
            reference=(batch["mask"][row, 0].numpy() > 0.5) if bool(batch["has_mask"][row]) else None,
            prediction=None if pred is None else pred[row],
            saliency=None if saliency is None else saliency[k, 0].float().cpu().numpy(),
        )
    return kept
