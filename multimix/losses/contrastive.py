"""Self-supervised losses on two views' embeddings: SimCLR's NT-Xent and Barlow Twins."""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def _validate_pair(name: str, z1: Tensor, z2: Tensor) -> None:
    """Raise ``ValueError`` unless ``z1`` and ``z2`` are ``(N, D)`` tensors of one shape, N >= 2."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(
            f"{name}: expected two (N, D) tensors of the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 2:
        raise ValueError(f"{name}: need a batch of at least 2 pairs (N >= 2), got N = {z1.shape[0]}")


def _autocast_off(device: torch.device) -> AbstractContextManager[object]:
    """Context in which autocast cannot lower matmuls on ``device`` to half precision."""
    # torch.autocast raises for device types without autocast support (e.g. "meta"); nothing on
    # such a device can be autocast anyway, so there is nothing to switch off.
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return nullcontext()


def _at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32, or kept in float64 if it already is (never lowered in precision)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _process_group_layout(gather_distributed: bool) -> tuple[int, int]:
    """``(rank, world_size)`` of the default process group, or ``(0, 1)`` if not gathering."""
    if not gather_distributed or not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def _gather_rows(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0, in rank order, with gradient flowing back.

    The backward of ``torch.distributed.nn.functional.all_gather`` sums, on each rank, the
    gradients that all ranks computed for that rank's rows, so every rank receives the gradient of
    the *sum* of all ranks' losses with respect to its own rows.
    """
    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        # Deprecated in favour of torch.distributed._functional_collectives, a private module whose
        # names keep changing; the public function still works and has the backward we rely on.
        warnings.filterwarnings("ignore", category=FutureWarning, message=".*all_gather.*")
        return torch.cat(all_gather(x), dim=0)


def _nt_xent_from_keys(
    anchors1: Tensor,
    anchors2: Tensor,
    keys1: Tensor,
    keys2: Tensor,
    offset: int,
    temperature: float,
) -> Tensor:
    """NT-Xent of local anchors against a (possibly larger) set of keys that contains them.

    All inputs are L2-normalised rows. ``anchors1[i]`` is ``keys1[offset + i]`` and likewise for
    view 2, so the anchor's own column is masked out and its other view is the positive; every other
    key is a negative. Returns the mean over the ``2 * len(anchors1)`` anchors.
    """
    n, m = anchors1.shape[0], keys1.shape[0]
    anchors = torch.cat([anchors1, anchors2], dim=0)
    keys = torch.cat([keys1, keys2], dim=0)
    logits = anchors @ keys.T / temperature

    local = torch.arange(n, device=anchors.device) + offset
    own_column = torch.cat([local, local + m])
    positive_column = torch.cat([local + m, local])
    rows = torch.arange(2 * n, device=anchors.device)
    is_self = torch.zeros_like(logits, dtype=torch.bool)
    is_self[rows, own_column] = True
    # -inf rather than subtracting a large constant: exp(-inf) = 0 exactly, so the anchor is removed
    # from the softmax denominator whatever the temperature.
    logits = logits.masked_fill(is_self, float("-inf"))
    return F.cross_entropy(logits, positive_column)


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float = 0.1, *, gather_distributed: bool = True) -> Tensor:
    """SimCLR's normalised-temperature cross-entropy (NT-Xent) over the whole batch.

    Rows are L2-normalised and the two views stacked into ``2N`` embeddings ``u_1 .. u_2N``. For each
    anchor ``k`` the positive is its other view ``p(k)`` (``k +- N``) and the negatives are the
    remaining ``2N - 2`` embeddings::

        loss = (1 / 2N) * sum_k -log( exp(s_k,p(k)) / sum_{j != k} exp(s_k,j) ),  s_k,j = u_k.u_j / T

    i.e. the cross-entropy of the cosine-similarity logits with the self-similarity set to ``-inf``
    (excluded from the softmax, not merely lowered). Computed in float32 (float64 inputs stay
    float64) with autocast switched off, since half-precision logits divided by a small temperature
    lose most of their resolution.

    Distributed: if a ``torch.distributed`` process group is initialised with world size ``W > 1``
    and ``gather_distributed`` is true, ``z1`` and ``z2`` are all-gathered (with gradient) from every
    rank. The anchors are still only this rank's ``2N`` rows, but their negatives become all
    ``2WN - 2`` other gathered embeddings, and the positive of local row ``i`` sits at gathered index
    ``rank * N + i`` of the other view. Each rank returns the mean over its own anchors; since the
    gather's backward sums every rank's gradient for a row, DDP's gradient averaging then yields
    exactly the gradient of the full-batch NT-Xent over all ``2WN`` embeddings. Every rank must call
    this together with the same ``N`` and ``D`` (a collective; mismatched shapes fail or hang).

    Args:
        z1: ``(N, D)`` embeddings of the first views.
        z2: ``(N, D)`` embeddings of the second views; row ``i`` is the positive of ``z1[i]``.
        temperature: softmax temperature ``T > 0``; SimCLR uses 0.1 to 0.5.
        gather_distributed: gather negatives from all ranks when running distributed; set to false
            for a rank-local loss (no communication).

    Returns:
        Scalar loss (float32, or float64 for float64 inputs).

    Raises:
        ValueError: if the shapes differ or are not ``(N, D)``, if ``N < 2`` (an anchor would have
            no negative), or if ``temperature <= 0``.
    """
    _validate_pair("nt_xent_loss", z1, z2)
    if not temperature > 0:
        raise ValueError(f"nt_xent_loss: temperature must be > 0, got {temperature}")

    rank, world_size = _process_group_layout(gather_distributed)
    with _autocast_off(z1.device):
        u1 = F.normalize(_at_least_float32(z1), dim=1)
        u2 = F.normalize(_at_least_float32(z2), dim=1)
        if world_size == 1:
            return _nt_xent_from_keys(u1, u2, u1, u2, 0, temperature)
        keys1, keys2 = _gather_rows(u1), _gather_rows(u2)
        return _nt_xent_from_keys(u1, u2, keys1, keys2, rank * u1.shape[0], temperature)


def _standardise_columns(z: Tensor, eps: float) -> Tensor:
    """``(z - mean) / sqrt(var + eps)`` per column, with the biased (divide-by-N) variance."""
    centred = z - z.mean(dim=0, keepdim=True)
    variance = centred.pow(2).mean(dim=0, keepdim=True)
    return centred * torch.rsqrt(variance + eps)


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambda_offdiag: float = 5e-3, *, eps: float = 1e-5) -> Tensor:
    """Barlow Twins redundancy-reduction loss (Zbontar et al., 2021).

    Each embedding dimension is standardised over the batch, using the **biased** variance (divide
    by ``N``, as ``BatchNorm1d`` does in training) with ``eps`` added inside the square root::

        zn = (z - mean_n z) / sqrt(mean_n (z - mean_n z)^2 + eps)

    The cross-correlation ``C = z1n.T @ z2n / N`` (``D x D``) then has ``C_ii = 1`` exactly (up to
    ``eps``) for identical views: with the unbiased variance it would be ``(N - 1) / N``, leaving a
    spurious on-diagonal loss for perfect views. The loss is::

        loss = sum_i (1 - C_ii)^2 + lambda_offdiag * sum_{i != j} C_ij^2

    Statistics are over the local batch only (no cross-rank reduction). Computed in float32 (float64
    inputs stay float64) with autocast switched off.

    Args:
        z1: ``(N, D)`` embeddings of the first views.
        z2: ``(N, D)`` embeddings of the second views, row-aligned with ``z1``.
        lambda_offdiag: weight ``>= 0`` of the off-diagonal (redundancy) term; 5e-3 is the paper's.
        eps: ``>= 0``, added to each variance; keeps a constant dimension finite.

    Returns:
        Scalar loss.

    Raises:
        ValueError: if the shapes differ or are not ``(N, D)``, if ``N < 2`` (no variance to
            standardise by), or if ``lambda_offdiag`` or ``eps`` is negative.
    """
    _validate_pair("barlow_twins_loss", z1, z2)
    if not lambda_offdiag >= 0:
        raise ValueError(f"barlow_twins_loss: lambda_offdiag must be >= 0, got {lambda_offdiag}")
    if not eps >= 0:
        raise ValueError(f"barlow_twins_loss: eps must be >= 0, got {eps}")

    with _autocast_off(z1.device):
        z1n = _standardise_columns(_at_least_float32(z1), eps)
        z2n = _standardise_columns(_at_least_float32(z2), eps)
        c = z1n.T @ z2n / z1.shape[0]
        on_diagonal = (1.0 - torch.diagonal(c)).pow(2).sum()
        # masked_fill rather than boolean indexing: no data-dependent shape, so no device sync.
        diagonal_mask = torch.eye(c.shape[0], dtype=torch.bool, device=c.device)
        off_diagonal = c.masked_fill(diagonal_mask, 0.0).pow(2).sum()
        return on_diagonal + lambda_offdiag * off_diagonal
