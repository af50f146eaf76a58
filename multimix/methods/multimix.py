"""MultiMix training step and its ablations (the paper's baselines) as flags of one method."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..losses import cross_entropy, dice_loss, fixmatch_loss, unlabeled_segmentation_kl
from ..models import MultiMixNet


@dataclass
class MultiMixMethod:
    """One MultiMix step, following the paper's data flow.

    * classification images (``cls_x``, and ``cls_w``/``cls_s`` when ``cls_ssl``) go through the
      encoder only, in one concatenated pass: CE on ``cls_x``; FixMatch on ``cls_s`` with
      pseudo-labels from ``cls_w`` above ``threshold``;
    * segmentation images (``seg_x``, and ``seg_u`` when ``seg_ssl``) go through the full model,
      one encoder pass serving the saliency bridge and the decoder: Dice on ``seg_x``; the
      Bernoulli KL term between labeled and unlabeled predictions on ``seg_u``.

    Which terms exist follows the model's heads and the flags, so the paper's rows are
    configurations: U-Net / Enc / UMTL / UMTLS (no SSL), Enc-SSL and UMTLS-SSL (``cls_ssl``),
    MultiMix (``cls_ssl`` and ``seg_ssl``). The bridge is a property of the model.
    """

    cls_ssl: bool = True
    seg_ssl: bool = True
    dice_weight: float = 5.0
    ce_weight: float = 1.0
    fixmatch_weight: float = 0.25
    kl_weight: float = 0.01
    threshold: float = 0.7
    kl_reference: str = "paired"
    class_weights: torch.Tensor | None = None
    ssl_rampup_steps: int = 0
    step: int = 0

    def set_progress(self, step: int, total_steps: int) -> None:
        """Called by the trainer before every step (drives the unsupervised-weight ramp-up)."""
        self.step = step

    @property
    def ssl_ramp(self) -> float:
        """Factor on the unsupervised terms: a sigmoid-shaped ramp from 0 to 1 over ``ssl_rampup_steps``.

        Early pseudo-labels come from a classifier at chance level; trusting them at full
        weight lets FixMatch confirm a collapsed (one-class) classifier.
        """
        if self.ssl_rampup_steps <= 0 or self.step >= self.ssl_rampup_steps:
            return 1.0
        phase = 1.0 - self.step / self.ssl_rampup_steps
        return math.exp(-5.0 * phase * phase)

    def streams(self, model: MultiMixNet) -> list[str]:
        """The data streams this method needs for ``model`` (see :mod:`multimix.data.streams`)."""
        names = []
        if model.has_seg_head:
            names.append("seg_x")
            if self.seg_ssl:
                names.append("seg_u")
        if model.has_cls_head:
            names.append("cls_x")
            if self.cls_ssl:
                names.append("cls_u")
        return names

    def train_step(self, model: MultiMixNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one step and its logs (loss terms, ``images``, ``pass_rate``)."""
        cls_logits = seg_logits = None
        if "cls_x" in batch and model.has_cls_head:
            cls_logits = self._classification_logits(model, batch)
        if "seg_x" in batch and model.has_seg_head:
            seg_logits = model(torch.cat(self.segmentation_views(batch))).seg_logits
        return self.loss_from_logits(batch, cls_logits, seg_logits)

    def _classification_logits(self, model: MultiMixNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Logits of :meth:`classification_views`. The weak view only yields pseudo-labels (FixMatch
        detaches them), so it runs without a graph: same loss and gradients, a third less backward."""
        if not self.cls_ssl:
            return model.classify(batch["cls_x"]).cls_logits
        with torch.no_grad():
            weak = model.classify(batch["cls_w"]).cls_logits
        n = batch["cls_x"].shape[0]
        graded = model.classify(torch.cat([batch["cls_x"], batch["cls_s"]])).cls_logits
        return torch.cat([graded[:n], weak, graded[n:]])

    def classification_views(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Images the class head sees, in order: labeled, then weak and strong unlabeled views."""
        return [batch["cls_x"], batch["cls_w"], batch["cls_s"]] if self.cls_ssl else [batch["cls_x"]]

    def segmentation_views(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Images the decoder sees, in order: labeled, then unlabeled."""
        return [batch["seg_x"], batch["seg_u"]] if self.seg_ssl else [batch["seg_x"]]

    def loss_from_logits(
        self, batch: dict[str, torch.Tensor], cls_logits: torch.Tensor | None, seg_logits: torch.Tensor | None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted loss from the logits of :meth:`classification_views` / :meth:`segmentation_views`.

        Separate from the forward passes so that any way of computing the logits (e.g. the
        original implementation's, in the benchmark) is scored by exactly the same loss.
        """
        terms: dict[str, torch.Tensor] = {}
        logs: dict[str, float] = {"images": 0}
        if cls_logits is not None:
            self._classification_terms(cls_logits.float(), batch, terms, logs)
        if seg_logits is not None:
            self._segmentation_terms(seg_logits.float(), batch, terms, logs)
        if not terms:
            raise ValueError(f"batch with keys {sorted(batch)} gives no loss term for this model")
        ramp = self.ssl_ramp
        weights = {"dice": self.dice_weight, "ce": self.ce_weight, "fixmatch": self.fixmatch_weight * ramp, "kl": self.kl_weight * ramp}
        loss = sum(weights[name] * value for name, value in terms.items())
        logs.update({name: float(value.detach()) for name, value in terms.items()})
        return loss, logs

    def _classification_terms(self, logits: torch.Tensor, batch, terms, logs) -> None:
        n = batch["cls_x"].shape[0]
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        terms["ce"] = cross_entropy(logits[:n], batch["cls_y"], weight)
        logs["images"] += n
        if self.cls_ssl:
            weak, strong = logits[n:].chunk(2)
            terms["fixmatch"], pass_rate = fixmatch_loss(weak, strong, threshold=self.threshold)
            logs["pass_rate"] = float(pass_rate)
            logs["images"] += 2 * weak.shape[0]

    def _segmentation_terms(self, seg_logits: torch.Tensor, batch, terms, logs) -> None:
        n = batch["seg_x"].shape[0]
        terms["dice"] = dice_loss(seg_logits[:n], batch["seg_y"])
        logs["images"] += seg_logits.shape[0]
        if self.seg_ssl:
            terms["kl"] = unlabeled_segmentation_kl(seg_logits[:n], seg_logits[n:], reference=self.kl_reference)
