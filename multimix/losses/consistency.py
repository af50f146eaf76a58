"""MultiMix's unsupervised segmentation term: a per-pixel Bernoulli KL divergence."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

REFERENCES = ("paired", "mean")


def _kl_from_log_probs(log_p: Tensor, log_1mp: Tensor, q_logits: Tensor) -> Tensor:
    """``KL(Bern(p) || Bern(sigmoid(q_logits)))`` given ``log p`` and ``log(1 - p)``.

    Working from log-probabilities keeps every term finite: ``p`` and ``1 - p`` are recovered with
    ``exp`` and multiply finite log-ratios, so a saturated sigmoid gives ``0 * finite``, never NaN.
    """
    log_q = F.logsigmoid(q_logits)
    log_1mq = F.logsigmoid(-q_logits)  # log(1 - sigmoid(x)) == logsigmoid(-x), without cancellation
    return log_p.exp() * (log_p - log_q) + log_1mp.exp() * (log_1mp - log_1mq)


def bernoulli_kl(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """Elementwise ``KL(Bern(sigmoid(p_logits)) || Bern(sigmoid(q_logits)))`` from logits.

    ``KL = p (log p - log q) + (1 - p) (log(1 - p) - log(1 - q))``, with every log computed by
    ``logsigmoid`` so that large logits neither overflow nor produce ``log(0)``. Gradient flows to
    both arguments; detach ``p_logits`` yourself to use it as a fixed reference.

    Args:
        p_logits: logits of the reference distribution ``P``.
        q_logits: logits of ``Q``, same shape.

    Returns:
        Tensor of the inputs' shape, ``>= 0`` (up to rounding), zero where the logits are equal.

    Raises:
        ValueError: if the shapes differ.
    """
    if p_logits.shape != q_logits.shape:
        raise ValueError(
            f"bernoulli_kl: p_logits shape {tuple(p_logits.shape)} != q_logits shape {tuple(q_logits.shape)}"
        )
    return _kl_from_log_probs(F.logsigmoid(p_logits), F.logsigmoid(-p_logits), q_logits)


def _mean_reference_log_probs(labeled_logits: Tensor) -> tuple[Tensor, Tensor]:
    """``log`` and ``log(1 - .)`` of the batch-mean sigmoid map, shape ``(1, ...)``.

    ``log(mean_i p_i) = logsumexp_i(log p_i) - log B`` stays finite even where every ``p_i``
    saturates at 0 or 1, unlike taking the logit of the averaged probability.
    """
    log_b = math.log(labeled_logits.shape[0])
    log_p = torch.logsumexp(F.logsigmoid(labeled_logits), dim=0, keepdim=True) - log_b
    log_1mp = torch.logsumexp(F.logsigmoid(-labeled_logits), dim=0, keepdim=True) - log_b
    return log_p, log_1mp


def unlabeled_segmentation_kl(labeled_logits: Tensor, unlabeled_logits: Tensor, reference: str = "paired") -> Tensor:
    """MultiMix's unsupervised segmentation loss: KL from labeled to unlabeled predictions.

    The paper regularises the segmentation of unlabeled images by the KL divergence between the
    predictions on the labeled batch, used as a fixed (detached) reference distribution, and the
    predictions on the unlabeled batch. Each pixel's sigmoid output is treated as a Bernoulli
    distribution, and the loss is the mean over images and pixels of::

        KL( Bern(sigmoid(labeled).detach()) || Bern(sigmoid(unlabeled)) )

    Background: the original implementation applied a softmax over the single output channel. A
    softmax over one channel is identically 1, so its KL term was identically zero and trained
    nothing; the Bernoulli form here is the non-degenerate reading of the paper's term.

    Args:
        labeled_logits: ``(B_l, 1, H, W)`` segmentation logits of the labeled batch; detached here,
            so it never receives gradient from this loss.
        unlabeled_logits: ``(B_u, 1, H, W)`` segmentation logits of the unlabeled batch; the only
            input that receives gradient.
        reference: how reference maps are assigned to unlabeled images:

            * ``"paired"``: labeled image ``i`` is the reference of unlabeled image ``i``. If the
              batch sizes differ, only the first ``min(B_l, B_u)`` images of each batch are used;
              the remaining images contribute nothing.
            * ``"mean"``: the batch-mean labeled probability map is the reference of every
              unlabeled image, so all unlabeled images count whatever the batch sizes.

    Returns:
        Scalar loss. If either batch is empty, a zero still connected to ``unlabeled_logits``.

    Raises:
        ValueError: for an unknown ``reference``, or if the non-batch dimensions differ.
    """
    if reference not in REFERENCES:
        raise ValueError(
            f"unlabeled_segmentation_kl: unknown reference {reference!r}; expected one of {', '.join(REFERENCES)}"
        )
    if labeled_logits.ndim != unlabeled_logits.ndim or labeled_logits.shape[1:] != unlabeled_logits.shape[1:]:
        raise ValueError(
            f"unlabeled_segmentation_kl: labeled shape {tuple(labeled_logits.shape)} and unlabeled "
            f"shape {tuple(unlabeled_logits.shape)} differ beyond the batch dimension"
        )
    n_labeled, n_unlabeled = labeled_logits.shape[0], unlabeled_logits.shape[0]
    if n_labeled == 0 or n_unlabeled == 0:
        return unlabeled_logits.sum() * 0.0

    # float32: the mean over every pixel of the batch is too long a sum for half precision.
    ref = labeled_logits.detach().float()
    target = unlabeled_logits.float()
    if reference == "paired":
        n = min(n_labeled, n_unlabeled)
        return bernoulli_kl(ref[:n], target[:n]).mean()
    log_p, log_1mp = _mean_reference_log_probs(ref)
    return _kl_from_log_probs(log_p.expand_as(target), log_1mp.expand_as(target), target).mean()
