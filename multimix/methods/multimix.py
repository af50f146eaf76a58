"""MultiMix training step and its ablations (the paper's baselines) as flags of one method."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.profiler import record_function

from multimix.config.schema import Config
from multimix.data.keys import CLS_S, CLS_U, CLS_W, CLS_X, CLS_Y, SEG_U, SEG_X, SEG_Y, domain_key, index_key
from multimix.losses import (
    cross_entropy,
    dice_loss,
    domain_adversarial_loss,
    fixmatch_loss,
    lung_map_loss,
    unlabeled_segmentation_kl,
)
from multimix.methods.base import Method, class_weights_for, register_method
from multimix.methods.pseudo_labels import PseudoLabeler
from multimix.models import MultiMixNet
from multimix.models.base import TaskModel, as_task_model
from multimix.models.postprocess import clean_lung_masks

TEACHERS = ("model", "ema")
# profiler scopes of one step (multimix benchmark --profile reads them)
SCOPE_CLASSIFICATION = "classification views"
SCOPE_SEGMENTATION = "segmentation views"
SCOPE_LOSSES = "losses"
SCOPE_DOMAIN = "domain head"


@register_method("multimix")
@dataclass
class MultiMixMethod(Method):
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

    Controls of the pseudo-labels (:mod:`multimix.methods.pseudo_labels`): ``threshold_mode``
    (``fixed`` or FreeMatch's self-adaptive ``freematch``), ``distribution_alignment``
    (``none``, ``labeled``, ``uniform``; ``labeled_class_counts`` gives the labeled prior) and
    ``teacher="ema"``, which takes the weak view's prediction from the EMA weights the trainer
    keeps (:meth:`attach_teacher`) instead of the weights being trained. A model that pools its
    class features over its own lung map (``cls_pooling="lung"``) gets one more term,
    ``lung_weight`` x BCE of that coarse map against the labeled masks shrunk to its grid.
    ``domain_weight > 0`` (with a model that has a ``domain_head``) adds domain-adversarial
    training: the head learns to tell the classification hospitals from the others on the pooled
    class features of every graded image, and the reversed gradient, ramped in as in DANN
    (``2 / (1 + exp(-10 p)) - 1`` at progress ``p``), teaches the encoder to make it fail.
    ``mask_pseudo_weight > 0`` adds self-training of the decoder on the unlabeled segmentation
    images: the teacher's mask of each (the EMA weights with ``teacher="ema"``, else the model
    itself, in eval mode and without gradient), cleaned to two solid lungs
    (:func:`~multimix.models.postprocess.clean_lung_mask`), is a Dice target for the model's
    prediction, ramped in with the other unsupervised terms. On images of a new hospital
    (children, with ``data.unlabeled_sources: [chex]``) this teaches whole lungs where the
    network would otherwise draw fragments.

    ``supervised_warmup_steps`` trains on the labeled losses alone (CE, Dice, lung map) for that
    many steps: FixMatch, the KL term, mask self-training and the domain head wait until the class
    head gives pseudo-labels better than chance (the unlabeled views are not even computed). The
    unsupervised ramp and the DANN schedule then start from the end of the warm-up.
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
    ssl_rampup_steps: int = 300
    supervised_warmup_steps: int = 0
    threshold_mode: str = "fixed"
    distribution_alignment: str = "none"
    teacher: str = "model"
    lung_weight: float = 1.0
    domain_weight: float = 0.0
    mask_pseudo_weight: float = 0.0
    labeled_class_counts: Sequence[int] | None = None
    num_classes: int = 2
    optimizer: str = "adam"
    step: int = 0
    total_steps: int = 0
    pseudo_labeler: PseudoLabeler = field(init=False)
    teacher_model: nn.Module | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.teacher not in TEACHERS:
            raise ValueError(f"method.teacher must be one of {TEACHERS}, got {self.teacher!r}")
        self.pseudo_labeler = PseudoLabeler(
            self.num_classes,
            self.threshold,
            self.threshold_mode,
            self.distribution_alignment,
            self.labeled_class_counts,
        )

    @classmethod
    def from_config(cls, cfg: Config, *, labeled_class_labels: Sequence[int] = (), **context: Any) -> MultiMixMethod:
        """The ``method`` section of ``cfg``; ``labeled_class_labels`` (the split's labeled class
        images) give the class weights and the labeled class prior."""
        labels = list(labeled_class_labels)
        # MethodConfig mirrors the method's fields, so the section passes straight through
        options = {k: v for k, v in dataclasses.asdict(cfg.method).items() if k not in ("name", "class_weights")}
        counts = [labels.count(c) for c in range(cfg.model.num_classes)]
        return cls(
            **options,
            class_weights=class_weights_for(cfg, labels),
            labeled_class_counts=counts,
            num_classes=cfg.model.num_classes,
        )

    def attach_teacher(self, teacher: nn.Module | None) -> None:
        """Called by the trainer with its EMA copy of the model (``None`` when it keeps none)."""
        if self.teacher == "ema" and teacher is None:
            raise ValueError("method.teacher 'ema' needs EMA weights: set train.ema_decay > 0 (e.g. 0.99)")
        self.teacher_model = teacher if self.teacher == "ema" else None

    def bind_streams(self, sizes: Mapping[str, int]) -> None:
        self.pseudo_labeler.bind_pool(sizes.get(CLS_U, 0))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The running pseudo-label statistics (saved in every checkpoint)."""
        return self.pseudo_labeler.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.pseudo_labeler.load_state_dict(state)

    def set_progress(self, step: int, total_steps: int) -> None:
        """Called by the trainer before every step (drives the unsupervised-weight ramp-up)."""
        self.step, self.total_steps = step, total_steps

    @property
    def warming_up(self) -> bool:
        """True during the supervised warm-up (labeled losses only)."""
        return self.step < self.supervised_warmup_steps

    @property
    def reversal(self) -> float:
        """DANN's schedule of the reversed gradient's scale: 0 at the end of the warm-up, towards 1
        at the end of training."""
        span = self.total_steps - self.supervised_warmup_steps
        progress = (self.step - self.supervised_warmup_steps) / span if span > 0 else 1.0
        return 2.0 / (1.0 + math.exp(-10.0 * max(0.0, progress))) - 1.0

    @property
    def ssl_ramp(self) -> float:
        """Factor on the unsupervised terms: 0 during the warm-up, then a sigmoid-shaped ramp from 0
        to 1 over ``ssl_rampup_steps``.

        Early pseudo-labels come from a classifier at chance level; trusting them at full
        weight lets FixMatch confirm a collapsed (one-class) classifier.
        """
        if self.warming_up:
            return 0.0
        since = self.step - self.supervised_warmup_steps
        if self.ssl_rampup_steps <= 0 or since >= self.ssl_rampup_steps:
            return 1.0
        phase = 1.0 - since / self.ssl_rampup_steps
        return math.exp(-5.0 * phase * phase)

    @property
    def cls_ssl_now(self) -> bool:
        """FixMatch is part of this step (on, and past the warm-up)."""
        return self.cls_ssl and not self.warming_up

    @property
    def seg_ssl_now(self) -> bool:
        """The unlabeled segmentation images are part of this step (on, and past the warm-up)."""
        return self.seg_ssl and not self.warming_up

    def streams(self, model: nn.Module) -> list[str]:
        """The data streams this method needs for ``model`` (see :mod:`multimix.data.streams`)."""
        net = as_task_model(model)
        names = []
        if net.has_seg_head:
            names.append(SEG_X)
            if self.seg_ssl:
                names.append(SEG_U)
        if net.has_cls_head:
            names.append(CLS_X)
            if self.cls_ssl:
                names.append(CLS_U)
        return names

    def train_step(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of one step and its logs (loss terms, ``images``, ``pass_rate``)."""
        if not isinstance(model, MultiMixNet):
            raise TypeError(f"the MultiMix method trains a MultiMixNet, got {type(model).__name__}")
        cls_logits = seg_logits = lung_logits = None
        adversarial = self.domain_weight > 0 and getattr(model, "domain_head", None) is not None and not self.warming_up
        embeddings: list[torch.Tensor] = []
        domains: list[torch.Tensor] = []
        if CLS_X in batch and model.has_cls_head:
            with record_function(SCOPE_CLASSIFICATION):
                cls_logits, embedding = self._classification_logits(model, batch)
            embeddings.append(embedding)
            if adversarial:
                domains += (
                    [batch[domain_key(CLS_X)], batch[domain_key(CLS_U)]]
                    if self.cls_ssl_now
                    else [batch[domain_key(CLS_X)]]
                )
        if SEG_X in batch and model.has_seg_head:
            with record_function(SCOPE_SEGMENTATION):
                out = model(torch.cat(self.segmentation_views(batch)), return_features=adversarial)
            seg_logits, lung_logits = out.seg_logits, out.lung_logits
            if adversarial:
                embeddings.append(out.required("embedding"))
                domains += (
                    [batch[domain_key(SEG_X)], batch[domain_key(SEG_U)]]
                    if self.seg_ssl_now
                    else [batch[domain_key(SEG_X)]]
                )
        with record_function(SCOPE_LOSSES):
            loss, logs = self.loss_from_logits(batch, cls_logits, seg_logits, lung_logits)
        if self.mask_pseudo_weight > 0 and seg_logits is not None and self.seg_ssl_now:
            term = self._mask_pseudo_term(model, batch[SEG_U], seg_logits[batch[SEG_X].shape[0] :])
            if term is not None:
                loss = loss + self.mask_pseudo_weight * self.ssl_ramp * term
                logs["mask_pseudo"] = float(term.detach())
        if adversarial and model.domain_head is not None:
            with record_function(SCOPE_DOMAIN):
                logits = model.domain_head(torch.cat(embeddings).float(), self.reversal)
                term = domain_adversarial_loss(logits, torch.cat(domains))
            loss = loss + self.domain_weight * term
            logs["domain"] = float(term.detach())
        elif self.warming_up and model.domain_head is not None and embeddings:
            # the head waits for the warm-up to end; a zero-weighted pass keeps every parameter in
            # the graph, as DistributedDataParallel requires
            loss = loss + 0.0 * model.domain_head(embeddings[0].float(), 0.0).sum()
        return loss, logs

    def _classification_logits(
        self, model: MultiMixNet, batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits of :meth:`classification_views`, and the pooled features of the graded images
        (labeled, then strong). The weak view only yields pseudo-labels (FixMatch detaches them),
        so it runs without a graph: same loss and gradients, a third less backward."""
        if not self.cls_ssl_now:
            out = model.classify(batch[CLS_X], return_embedding=True)
            return out.required("cls_logits"), out.required("embedding")
        with torch.no_grad():
            weak = self._weak_logits(model, batch[CLS_W])
        n = batch[CLS_X].shape[0]
        graded = model.classify(torch.cat([batch[CLS_X], batch[CLS_S]]), return_embedding=True)
        logits = graded.required("cls_logits")
        return torch.cat([logits[:n], weak, logits[n:]]), graded.required("embedding")

    def _mask_pseudo_term(self, model: MultiMixNet, images: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        """Dice of ``logits`` against the teacher's cleaned masks of ``images`` (None if all are empty)."""
        teacher = self.teacher_model if self.teacher_model is not None else model
        was_training = teacher.training
        teacher.eval()
        with torch.no_grad():
            probs = torch.sigmoid(teacher(images).required("seg_logits").float())
        teacher.train(was_training)
        # the air beside a small child is never a target: regions at the image's side edge are dropped
        masks = clean_lung_masks((probs[:, 0] >= 0.5).cpu().numpy(), drop_edge_regions=True)
        keep = torch.from_numpy(masks.reshape(len(masks), -1).any(axis=1)).to(logits.device)
        if not keep.any():
            return None
        targets = torch.from_numpy(masks[:, None].astype("float32")).to(logits.device)
        return dice_loss(logits[keep].float(), targets[keep])

    def _weak_logits(self, model: MultiMixNet, images: torch.Tensor) -> torch.Tensor:
        if self.teacher_model is None:
            return model.classify(images).required("cls_logits")
        teacher = cast(TaskModel, self.teacher_model)  # the EMA copy of the model: only classify() is used
        self.teacher_model.eval()  # a teacher without dropout gives its firmest prediction
        return teacher.classify(images).required("cls_logits")

    def classification_views(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Images the class head sees, in order: labeled, then weak and strong unlabeled views."""
        return [batch[CLS_X], batch[CLS_W], batch[CLS_S]] if self.cls_ssl_now else [batch[CLS_X]]

    def segmentation_views(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Images the decoder sees, in order: labeled, then unlabeled."""
        return [batch[SEG_X], batch[SEG_U]] if self.seg_ssl_now else [batch[SEG_X]]

    def loss_from_logits(
        self,
        batch: dict[str, torch.Tensor],
        cls_logits: torch.Tensor | None,
        seg_logits: torch.Tensor | None,
        lung_logits: torch.Tensor | None = None,
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
        if lung_logits is not None:
            terms["lung"] = lung_map_loss(lung_logits[: batch[SEG_X].shape[0]].float(), batch[SEG_Y])
        if not terms:
            raise ValueError(f"batch with keys {sorted(batch)} gives no loss term for this model")
        ramp = self.ssl_ramp
        weights = {
            "dice": self.dice_weight,
            "ce": self.ce_weight,
            "fixmatch": self.fixmatch_weight * ramp,
            "kl": self.kl_weight * ramp,
            "lung": self.lung_weight,
        }
        loss = cast(torch.Tensor, sum(weights[name] * value for name, value in terms.items()))
        logs.update({name: float(value.detach()) for name, value in terms.items()})
        return loss, logs

    def _classification_terms(self, logits: torch.Tensor, batch, terms, logs) -> None:
        n = batch[CLS_X].shape[0]
        weight = None if self.class_weights is None else self.class_weights.to(logits.device)
        terms["ce"] = cross_entropy(logits[:n], batch[CLS_Y], weight)
        logs["images"] += n
        if self.cls_ssl_now:
            weak, strong = logits[n:].chunk(2)
            probs, threshold = self.pseudo_labeler(weak, indices=batch.get(index_key(CLS_U)))
            terms["fixmatch"], pass_rate = fixmatch_loss(weak, strong, threshold=threshold, weak_probs=probs)
            logs["pass_rate"] = float(pass_rate)
            logs["pseudo_normal"] = float((probs.argmax(dim=1) == 0).float().mean())
            logs["images"] += 2 * weak.shape[0]

    def _segmentation_terms(self, seg_logits: torch.Tensor, batch, terms, logs) -> None:
        n = batch[SEG_X].shape[0]
        terms["dice"] = dice_loss(seg_logits[:n], batch[SEG_Y])
        logs["images"] += seg_logits.shape[0]
        if self.seg_ssl_now:
            terms["kl"] = unlabeled_segmentation_kl(seg_logits[:n], seg_logits[n:], reference=self.kl_reference)
