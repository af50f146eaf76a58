"""The training streams of one MultiMix step, built so that step ``t``'s batch is a pure function
of ``(seed, t)``: resuming at step ``t`` (or sharding across ranks) reproduces the data exactly.

One item of :class:`StepBatches` is a whole step's batch dict, so ``DataLoader`` workers build
whole steps in parallel:

* ``seg_x``, ``seg_y`` — labeled segmentation images and masks (labeled view)
* ``seg_u`` — unlabeled segmentation images (weak view)
* ``cls_x``, ``cls_y`` — labeled classification images and labels (labeled view)
* ``cls_w``, ``cls_s`` — the same unlabeled classification images, weak and strong views

With ``domains`` (a map from a record's source to a domain index), every stream also carries
``<stream>_domain`` (``seg_x_domain``, ``seg_u_domain``, ``cls_x_domain``, ``cls_u_domain``): the
domain of each image, for domain-adversarial training.

With ``balanced`` streams (``data.balanced_labeled`` names ``cls_x``), every batch of such a
stream holds each class in equal share: each class walks its own seeded permutations, so with 100
labels of which 26 are normal a batch of 4 always has 2 normal images (drawn plainly, a batch of 4
has none 30% of the time, and the class head learns to call everything the majority class).

The labeled view is the weak view, or with ``acquisition=True`` the wide acquisition
augmentation (:mod:`multimix.data.transforms`), which the strong view then carries too. The weak
view of unlabeled images stays weak: it is where the pseudo-labels come from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from multimix.data.io import read_record_image, read_record_mask
from multimix.data.keys import (
    CLS_S,
    CLS_U,
    CLS_W,
    CLS_X,
    CLS_Y,
    SEG_U,
    SEG_X,
    SEG_Y,
    STREAM_NAMES,
    VIEW1,
    VIEW2,
    domain_key,
    index_key,
)
from multimix.data.records import Record
from multimix.data.transforms import (
    XrayTransform,
    contrastive_transform,
    eval_transform,
    strong_transform,
    weak_transform,
)


def _stream_seed(seed: int, name: str, *extra: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, STREAM_NAMES.index(name), *extra])


def _augmentation_seed(seed: int, step: int, rank: int) -> int:
    # a fourth entropy word keeps these apart from every stream's permutation seeds
    return int(np.random.SeedSequence([seed, step, rank, 0xA0C]).generate_state(1)[0])


class StepBatches(Dataset):
    """Map-style dataset whose item ``i`` is the batch of training step ``start_step + i``.

    Each stream walks through seeded permutations of its pool (a new permutation every pass),
    ``batch_size`` items per step per rank; ranks take disjoint positions.

    Args:
        streams: pool of records per stream name (a subset of :data:`STREAM_NAMES`; empty or
            missing streams are skipped, e.g. ``cls_u`` for a model trained without FixMatch).
        image_size: side of the square training images.
        batch_size: images per stream per step (per rank).
        seed: the run seed.
        total_steps, start_step: the step range covered.
        strong_ops: RandAugment-style operations per strong view.
        hflip: allow horizontal flips in the weak/strong views.
        strong_views: give ``cls_u`` its strong view ``cls_s``; ``False`` yields the weak view
            ``cls_w`` alone (distillation needs no strong view, and skips making one).
        intensity: per-image intensity standardisation of every view (``data.intensity``).
        acquisition: wide acquisition augmentation on the labeled and strong views.
        seg_zoom_out: zoom-out of the labeled segmentation view (``data.seg_zoom_out``; see
            :func:`~multimix.data.transforms.weak_transform`).
        domains: source name -> domain index; adds the ``<stream>_domain`` tensors.
        balanced: streams whose batches hold every class of their pool in equal share (records
            must have labels); the remainder of ``batch_size / classes`` goes to the classes in
            turn, step by step.
        rank, world_size: this process's shard under distributed training.
    """

    def __init__(
        self,
        streams: Mapping[str, Sequence[Record]],
        *,
        image_size: int,
        batch_size: int,
        seed: int,
        total_steps: int,
        start_step: int = 0,
        strong_ops: int = 2,
        hflip: bool = True,
        strong_views: bool = True,
        intensity: str = "none",
        acquisition: bool = False,
        seg_zoom_out: float = 0.0,
        domains: Mapping[str, int] | None = None,
        balanced: Sequence[str] = (),
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        unknown = set(streams) - set(STREAM_NAMES)
        if unknown:
            raise ValueError(f"unknown streams {sorted(unknown)}; expected a subset of {STREAM_NAMES}")
        self.streams = {name: list(pool) for name, pool in streams.items() if len(pool) > 0}
        if not self.streams:
            raise ValueError("no training stream has any image")
        self.batch_size, self.seed = batch_size, seed
        self.total_steps, self.start_step = total_steps, start_step
        self.rank, self.world_size = rank, world_size
        self.strong_views = strong_views
        self.domains = dict(domains) if domains is not None else None
        self.weak = weak_transform(image_size, hflip=hflip, intensity=intensity)
        self.labeled = (
            weak_transform(image_size, hflip=hflip, intensity=intensity, acquisition=True) if acquisition else self.weak
        )
        self.strong = strong_transform(
            image_size, num_ops=strong_ops, hflip=hflip, intensity=intensity, acquisition=acquisition
        )
        self.seg_labeled = (
            weak_transform(image_size, hflip=hflip, intensity=intensity, acquisition=acquisition, zoom_out=seg_zoom_out)
            if seg_zoom_out > 0
            else self.labeled
        )
        self._permutations: dict[tuple[str, int, int], np.ndarray] = {}
        self._class_members = {name: _class_members(self.streams[name]) for name in balanced if name in self.streams}

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)

    def indices(self, name: str, step: int) -> list[int]:
        """Pool indices stream ``name`` uses at ``step`` on this rank."""
        if name in self._class_members:
            return self._balanced_indices(name, step)
        pool_size = len(self.streams[name])
        first = (step * self.world_size + self.rank) * self.batch_size
        return [
            self._permutation(name, pos // pool_size)[pos % pool_size] for pos in range(first, first + self.batch_size)
        ]

    def _balanced_indices(self, name: str, step: int) -> list[int]:
        members = self._class_members[name]
        classes = len(members)
        slots = -(-self.batch_size // classes)  # every step reserves the most a class can take
        first = (step * self.world_size + self.rank) * slots
        indices = []
        for c, pool in enumerate(members):
            share = self.batch_size // classes + (1 if (c - step) % classes < self.batch_size % classes else 0)
            indices += [
                int(pool[self._permutation(name, pos // len(pool), c)[pos % len(pool)]])
                for pos in range(first, first + share)
            ]
        return indices

    def _permutation(self, name: str, epoch: int, part: int = -1) -> np.ndarray:
        """The ``epoch``-th seeded permutation of stream ``name``'s pool, or with ``part >= 0`` of
        the members of class ``part`` of a balanced stream."""
        key = (name, epoch, part)
        if key not in self._permutations:
            if len(self._permutations) > 16:  # only the current and next pass are ever needed
                self._permutations.clear()
            extra = (epoch,) if part < 0 else (epoch, part)
            size = len(self.streams[name]) if part < 0 else len(self._class_members[name][part])
            self._permutations[key] = np.random.default_rng(_stream_seed(self.seed, name, *extra)).permutation(size)
        return self._permutations[key]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        step = self.start_step + i
        aug_seed = _augmentation_seed(self.seed, step, self.rank)
        self.weak.reseed(aug_seed)
        self.strong.reseed(aug_seed + 1)
        if self.labeled is not self.weak:
            self.labeled.reseed(aug_seed + 2)
        if self.seg_labeled is not self.labeled:
            self.seg_labeled.reseed(aug_seed + 3)
        batch: dict[str, torch.Tensor] = {}
        for name in self.streams:
            indices = self.indices(name, step)
            records = [self.streams[name][j] for j in indices]
            batch.update(self._load(name, records))
            batch[index_key(name)] = torch.tensor(indices, dtype=torch.long)
            if self.domains is not None:
                batch[domain_key(name)] = torch.tensor([self.domains[r.source] for r in records], dtype=torch.long)
        return batch

    def _load(self, name: str, records: list[Record]) -> dict[str, torch.Tensor]:
        if name == SEG_X:
            pairs = [self.seg_labeled(read_record_image(r), _require_mask(r)) for r in records]
            return {
                SEG_X: torch.stack([p[0] for p in pairs]),
                SEG_Y: torch.stack([cast(torch.Tensor, p[1]) for p in pairs]),
            }  # a mask in, a mask out
        images = [read_record_image(r) for r in records]
        if name == SEG_U:
            return {SEG_U: torch.stack([self.weak(im)[0] for im in images])}
        if name == CLS_X:
            return {
                CLS_X: torch.stack([self.labeled(im)[0] for im in images]),
                CLS_Y: torch.tensor([_require_label(r) for r in records], dtype=torch.long),
            }
        views = {CLS_W: torch.stack([self.weak(im)[0] for im in images])}
        if self.strong_views:
            views[CLS_S] = torch.stack([self.strong(im)[0] for im in images])
        return views


def _class_members(pool: Sequence[Record]) -> list[np.ndarray]:
    """Pool positions of each class present in a balanced stream's pool."""
    labels = np.array([_require_label(r) for r in pool])
    return [np.flatnonzero(labels == c) for c in np.unique(labels)]


def _require_mask(record: Record) -> np.ndarray:
    mask = read_record_mask(record)
    if mask is None:
        raise ValueError(f"record {record.uid} ({record.source}) is in the labeled segmentation stream but has no mask")
    return mask


def _require_label(record: Record) -> int:
    if record.label is None:
        raise ValueError(
            f"record {record.uid} ({record.source}) is in the labeled classification stream but has no label"
        )
    return int(record.label)


def step_loader(
    dataset: StepBatches, *, num_workers: int = 0, pin_memory: bool = False
) -> Iterator[dict[str, torch.Tensor]]:
    """Iterate the step batches in order, optionally built by worker processes."""
    loader = DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=False,
        prefetch_factor=4 if num_workers > 0 else None,
    )
    return iter(loader)


class EvalDataset(Dataset):
    """Held-out records at evaluation size: image, mask (zeros + ``has_mask=False`` if none), label (-1 if none)."""

    def __init__(self, records: Sequence[Record], image_size: int, *, intensity: str = "none") -> None:
        self.records = list(records)
        self.transform: XrayTransform = eval_transform(image_size, intensity=intensity)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        record = self.records[i]
        mask = read_record_mask(record)
        image, mask_t = self.transform(read_record_image(record), mask)
        if mask_t is None:
            mask_t = torch.zeros(1, self.image_size, self.image_size)
        return {
            "image": image,
            "mask": mask_t,
            "has_mask": torch.tensor(mask is not None),
            "label": torch.tensor(-1 if record.label is None else int(record.label)),
            "index": torch.tensor(i),
        }


class ContrastiveBatches(StepBatches):
    """Step batches of positive pairs for self-supervised pretraining.

    One pool (labels ignored by the loss) walked exactly like a :class:`StepBatches` stream
    (seeded permutations, disjoint rank shards, step-indexed for exact resume). Item ``i`` is
    ``{"view1", "view2"}`` (two independent contrastive views of the same images) and ``label``
    (the class index, -1 where the record has none; only the online linear probe uses it).
    """

    POOL = CLS_U  # the walk of an unlabeled stream; the name only keys the permutation seeds

    def __init__(
        self,
        records: Sequence[Record],
        *,
        image_size: int,
        batch_size: int,
        seed: int,
        total_steps: int,
        start_step: int = 0,
        crop_scale: tuple[float, float] = (0.5, 1.0),
        intensity: str = "none",
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        super().__init__(
            {self.POOL: records},
            image_size=image_size,
            batch_size=batch_size,
            seed=seed,
            total_steps=total_steps,
            start_step=start_step,
            intensity=intensity,
            rank=rank,
            world_size=world_size,
        )
        self.views = contrastive_transform(image_size, crop_scale=crop_scale, intensity=intensity)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        step = self.start_step + i
        self.views.reseed(_augmentation_seed(self.seed, step, self.rank))
        records = [self.streams[self.POOL][j] for j in self.indices(self.POOL, step)]
        images = [read_record_image(r) for r in records]
        return {
            VIEW1: torch.stack([self.views(im)[0] for im in images]),
            VIEW2: torch.stack([self.views(im)[0] for im in images]),
            "label": torch.tensor([-1 if r.label is None else int(r.label) for r in records]),
        }
