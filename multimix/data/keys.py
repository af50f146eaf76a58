"""The names of a training batch's entries, shared by the data streams that fill a batch and the
methods that read it (one spelling, checked by the type checker instead of by a typo at run time).

A MultiMix batch holds up to four streams: labeled lungs (``SEG_X`` images with ``SEG_Y``
masks), unlabeled lung images (``SEG_U``), labeled class images (``CLS_X`` with ``CLS_Y``) and
unlabeled class images (stream ``CLS_U``), which arrive as two views of the same images
(``CLS_W`` weak, ``CLS_S`` strong). Contrastive pretraining batches hold ``VIEW1`` / ``VIEW2``.
"""

from __future__ import annotations

import torch

Batch = dict[str, torch.Tensor]

SEG_X, SEG_Y, SEG_U = "seg_x", "seg_y", "seg_u"
CLS_X, CLS_Y, CLS_U = "cls_x", "cls_y", "cls_u"
CLS_W, CLS_S = "cls_w", "cls_s"
VIEW1, VIEW2 = "view1", "view2"

STREAM_NAMES = (SEG_X, SEG_U, CLS_X, CLS_U)  # the record pools a run draws from
IMAGE_KEYS = (SEG_X, SEG_U, CLS_X, CLS_W, CLS_S)  # entries that are image tensors a step consumes


def index_key(stream: str) -> str:
    """The entry holding the pool index of every image of ``stream`` (every stream carries one:
    a method that remembers images, such as FlexMatch's thresholds, reads it)."""
    return f"{stream}_index"


def domain_key(stream: str) -> str:
    """The entry holding the domain index of every image of ``stream`` (domain-adversarial training)."""
    return f"{stream}_domain"
