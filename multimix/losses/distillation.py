"""Knowledge distillation: match a student's softened class distribution to a teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32, or kept in float64 if it already is (never lowered in precision)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def distillation_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Temperature-scaled distillation loss ``T^2 * KL(teacher || student)`` (Hinton et al., 2015).

    With ``p = softmax(teacher_logits / T)`` and ``q = softmax(student_logits / T)``::

        loss = T^2 * (1 / B) * sum_b sum_c p_bc * (log p_bc - log q_bc)

    This is the usual soft-target cross-entropy ``T^2 * mean_b CE(p_b, log q_b)`` minus ``T^2``
    times the teacher's mean entropy ``H(p)``: ``CE = KL + H(p)``. The two have the same gradient
    with respect to the student (the entropy does not depend on it), but the plain cross-entropy is
    not zero when student and teacher agree; the KL form is, exactly, which is what this function
    guarantees. The ``T^2`` factor keeps the gradient's magnitude roughly independent of ``T``: the
    gradient of the KL with respect to the student logits scales as ``1 / T^2`` for large ``T``.

    The teacher is detached, so no gradient ever reaches it. Computed in float32 (float64 inputs
    stay float64), since log-probabilities of half-precision logits are coarse.

    Args:
        student_logits: ``(B, C)`` class logits of the student.
        teacher_logits: ``(B, C)`` class logits of the teacher.
        temperature: softening temperature ``T > 0``.

    Returns:
        Scalar loss ``>= 0`` (up to rounding). An empty batch gives a zero that is still connected
        to ``student_logits``.

    Raises:
        ValueError: if the shapes differ or are not ``(B, C)``, or ``temperature <= 0``.
    """
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(
            f"distillation_loss: expected two (B, C) tensors of the same shape, got student "
            f"{tuple(student_logits.shape)} and teacher {tuple(teacher_logits.shape)}"
        )
    if not temperature > 0:
        raise ValueError(f"distillation_loss: temperature must be > 0, got {temperature}")
    if student_logits.shape[0] == 0:
        return student_logits.sum() * 0.0

    log_q = F.log_softmax(_at_least_float32(student_logits) / temperature, dim=1)
    log_p = F.log_softmax(_at_least_float32(teacher_logits.detach()) / temperature, dim=1)
    # log_target: p * (log p - log q) from log-probabilities, which is exactly 0 where they agree.
    kl = F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)
    return kl * temperature**2
