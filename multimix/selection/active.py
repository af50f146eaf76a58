"""Active learning: which unlabeled images to label next.

Given a classifier and a pool of unlabeled records, rank the pool by

* ``entropy``: the predictive entropy of the class probabilities (most uncertain first);
* ``disagreement``: how much the probabilities vary over ``n_views`` weakly augmented views of
  the same image (the variance of p(class), summed over classes);
* ``random``: a seeded shuffle, the control every active strategy must beat;

then take the top ``k``, optionally class-balanced (an equal share per *predicted* class, since
the true labels are what we are about to pay for). The result extends a split's labeled set and
is saved as a split file that ``multimix train --split`` and fine-tuning accept.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch
from tqdm.auto import tqdm

from multimix.data.io import read_record_image
from multimix.data.records import Record
from multimix.data.splits import Split, TaskSplit
from multimix.data.transforms import eval_transform, weak_transform

STRATEGIES = ("entropy", "disagreement", "random")
Classifier = Callable[[torch.Tensor], torch.Tensor]  # images (B, 1, S, S) -> logits (B, C)


def predictive_entropy(probs: np.ndarray) -> np.ndarray:
    """``-sum_c p_c log p_c`` of each row of ``(N, C)`` probabilities (0 log 0 = 0), in nats."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (N, C), got shape {p.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def view_disagreement(view_probs: np.ndarray) -> np.ndarray:
    """Variance over views of each class probability, summed over classes: ``(V, N, C) -> (N,)``."""
    p = np.asarray(view_probs, dtype=np.float64)
    if p.ndim != 3 or p.shape[0] < 2:
        raise ValueError(f"view_probs must be (V >= 2, N, C), got shape {p.shape}")
    return p.var(axis=0).sum(axis=1)


def top_k(scores: np.ndarray, k: int, *, predicted: np.ndarray | None = None, seed: int = 0) -> list[int]:
    """Indices of the ``k`` highest scores (ties broken by a seeded shuffle).

    With ``predicted`` (the predicted class of each item) the ``k`` are split as evenly as the
    classes allow: round-robin over classes, each taking its next-highest item.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not 0 < k <= scores.size:
        raise ValueError(f"k must be in [1, {scores.size}] (the pool size), got {k}")
    order = np.random.default_rng(seed).permutation(scores.size)
    ranked = order[np.argsort(-scores[order], kind="stable")]
    if predicted is None:
        return [int(i) for i in ranked[:k]]
    queues = {c: [int(i) for i in ranked if predicted[i] == c] for c in np.unique(predicted)}
    chosen: list[int] = []
    while len(chosen) < k:
        for queue in queues.values():
            if queue and len(chosen) < k:
                chosen.append(queue.pop(0))
    return chosen


@torch.no_grad()
def pool_probabilities(
    classifier: Classifier,
    records: Sequence[Record],
    *,
    image_size: int,
    views: int = 1,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
    intensity: str = "none",
) -> np.ndarray:
    """``(views, N, C)`` class probabilities: view 0 unaugmented, the others weak augmentations."""
    images = [read_record_image(r) for r in records]
    all_views = []
    for view in tqdm(range(views), desc="views", disable=not progress, leave=False):
        transform = (
            eval_transform(image_size, intensity=intensity)
            if view == 0
            else weak_transform(image_size, intensity=intensity, seed=seed + view)
        )
        probs = []
        for start in range(0, len(images), batch_size):
            batch = torch.stack([transform(im)[0] for im in images[start : start + batch_size]]).to(device)
            probs.append(torch.softmax(classifier(batch).float(), dim=1).cpu().numpy())
        all_views.append(np.concatenate(probs))
    return np.stack(all_views)


def select_for_labeling(
    classifier: Classifier | None,
    pool: Sequence[Record],
    k: int,
    *,
    strategy: str = "entropy",
    image_size: int = 64,
    views: int = 8,
    class_balanced: bool = False,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
    intensity: str = "none",
) -> list[str]:
    """The uids of the ``k`` pool images to label next (see the module docstring)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if strategy == "random":
        if not 0 < k <= len(pool):
            raise ValueError(f"k must be in [1, {len(pool)}] (the pool size), got {k}")
        order = np.random.default_rng(seed).permutation(len(pool))[:k]
        return [pool[i].uid for i in order]
    if classifier is None:
        raise ValueError(f"strategy {strategy!r} needs a trained classifier")
    probs = pool_probabilities(
        classifier,
        pool,
        image_size=image_size,
        views=views if strategy == "disagreement" else 1,
        batch_size=batch_size,
        device=device,
        seed=seed,
        progress=progress,
        intensity=intensity,
    )
    scores = predictive_entropy(probs[0]) if strategy == "entropy" else view_disagreement(probs)
    predicted = probs[0].argmax(axis=1) if class_balanced else None
    return [pool[i].uid for i in top_k(scores, k, predicted=predicted, seed=seed)]


def with_new_labels(split: Split, uids: Sequence[str], *, task: str = "cls", strategy: str = "") -> Split:
    """``split`` with ``uids`` moved from ``task``'s unlabeled list to its labeled list."""
    current: TaskSplit = getattr(split, task)
    pool, labeled = set(current.unlabeled), set(current.labeled)
    unknown = [u for u in uids if u not in pool or u in labeled]
    if unknown:
        raise ValueError(
            f"{len(unknown)} selected images are not unlabeled {task} images of the split, e.g. {unknown[:3]}"
        )
    chosen = set(uids)
    # a split that keeps labeled images in the unlabeled pool too keeps the new ones there as well
    keep_in_pool = split.meta.get("exclude_labeled_from_unlabeled") is False
    unlabeled = list(current.unlabeled) if keep_in_pool else [u for u in current.unlabeled if u not in chosen]
    task_split = TaskSplit(labeled=[*current.labeled, *uids], unlabeled=unlabeled)
    meta = {**split.meta, "active_learning": {"task": task, "strategy": strategy, "added": len(uids)}}
    if task == "seg":
        return replace(split, seg=task_split, meta=meta)
    return replace(split, cls=task_split, meta=meta)
