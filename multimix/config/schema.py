"""What a run is: one dataclass per config section, their defaults, and setting a value by its
dotted key with the field's type (``train.lr=1e-3`` -> ``float``).

The defaults here are the library's MultiMix defaults (the packaged ``multimix`` config adds
nothing to them): the synthetic chest X-rays at 64 px, sized to train in minutes on a CPU.
Every other packaged config (``paper``, ``real``, ``baselines/*``, ``finetune``, ``distill``)
is a YAML file of differences from them.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ModelConfig:
    """Architecture (see :func:`multimix.models.build_model`)."""

    name: str = "multimix"  # multimix | unet | enc | umtl | umtls (the paper's rows; see `multimix train --help`)
    in_channels: int = 1  # image channels (1 for X-rays)
    num_classes: int = 2  # classification classes (normal, pneumonia)
    seg_channels: int = 1  # segmentation output channels (1: lung)
    widths: list[int] = field(
        default_factory=lambda: [16, 32, 64, 128]
    )  # 4 levels: an 8x8 bottleneck at 64 px (the paper: 5 levels at 256 px)
    dropout: float = 0.25  # before the class head
    norm: str = "instance"  # instance | batch | group: normalisation of every convolution block
    negative_slope: float = 0.2  # of the LeakyReLU activations
    cls_pooling: str = "global"  # global (average over the image) | lung (over the model's own coarse lung map)
    cls_input: str = "image"  # image | lung_crop (the box of the model's own lung mask, resized, for the class head)
    crop_margin: float = 0.1  # lung_crop: the box widened by this share of its width and height on every side
    init_encoder: str | None = None  # a pretraining checkpoint whose U-Net encoder starts the model


@dataclass
class DataConfig:
    """What every data source shares: which source, the image size, how many images are labeled,
    the batches and their augmentation. The source's own settings are in :class:`SyntheticConfig`
    (``source: synthetic``) and :class:`RealDataConfig` (``source: real``)."""

    source: str = "synthetic"  # synthetic (the built-in generator) | real (the datasets under real.root)
    image_size: int = 64  # training and evaluation side in pixels (square)
    seg_labels: str = "10"  # labeled lung masks: a count, a percentage (5%) or all
    cls_labels: str = "100"  # labeled classification images: a count, a percentage or all
    exclude_labeled_from_unlabeled: bool = True  # a labeled image is not also in its unlabeled stream
    batch_size: int = 4  # images per stream per step
    strong_ops: int = 2  # RandAugment operations of the strong view (FixMatch)
    hflip: bool = True  # random horizontal flips in training
    intensity: str = (
        "none"  # per-image standardisation at training, evaluation and prediction: none|clahe|equalize|window
    )
    balanced_labeled: bool = False  # every labeled classification batch holds each class in equal share
    # > 0: half of the labeled lung-mask views are shrunk by a factor in [1 - seg_zoom_out, 1] onto a
    # black frame, so adult masks also teach a small body inside a large dark frame (children)
    seg_zoom_out: float = 0.0
    # standard (FixMatch weak/strong) | acquisition (wide geometry + intensities on labeled and strong views)
    augment: str = "standard"
    num_workers: int = 0  # data-loader worker processes (0: in the training process)
    split_file: str | None = None  # a split.json to use instead of drawing a new split
    # images of these sources join both unlabeled streams, without their labels (synthetic sites or real sources)
    unlabeled_sources: list[str] = field(default_factory=list)
    # the classification training images (labels unused) also serve as unlabeled segmentation images,
    # so the decoder learns the classifier's own domain (children) whatever the classification sources are
    seg_unlabeled_from_cls: bool = False


@dataclass
class SyntheticConfig:
    """The built-in generator (``data.source: synthetic``): ``*_pool`` training images per
    training site and ``val_per_site`` / ``test_per_site`` held-out images; segmentation streams
    draw from ``seg_sites``, classification streams from ``cls_sites``, and ``cross_sites`` are
    never trained on (cross-domain evaluation)."""

    seg_sites: list[str] = field(default_factory=lambda: ["jsrt"])  # sites whose images carry the lung masks
    cls_sites: list[str] = field(default_factory=lambda: ["chex"])  # sites whose images carry the class labels
    cross_sites: list[str] = field(default_factory=lambda: ["nih"])  # sites held out for cross-domain tests
    seg_pool: int = 200  # segmentation training images, split over seg_sites
    cls_pool: int = 1000  # classification training images, split over cls_sites
    val_per_site: int = 50  # validation images per training site
    test_per_site: int = 100  # test images per site
    pneumonia_fraction: float = 0.5  # share of generated images with pneumonia


@dataclass
class RealDataConfig:
    """Real datasets in their published layouts (``data.source: real``): names under ``root`` or
    ``folder:PATH`` (see :mod:`multimix.data.sources`), their held-out parts, and their cache."""

    root: str | None = None  # the data root holding one folder per dataset (--data-root)
    # sources of the lung masks: names under root, folder:PATH or csv:PATH
    seg_sources: list[str] = field(default_factory=lambda: ["jsrt"])
    cls_sources: list[str] = field(default_factory=lambda: ["chex"])  # sources of the class labels
    # mask sources for cross-domain tests only (never trained on)
    cross_seg_sources: list[str] = field(default_factory=lambda: ["montgomery"])
    # label sources for cross-domain tests only (never trained on)
    cross_cls_sources: list[str] = field(default_factory=lambda: ["nih"])
    val_fraction: float = 0.053  # JSRT: the paper's 111/13/123 train/val/test
    test_fraction: float = 0.5  # share held out for testing where a source has no official test split
    cache_dir: str | None = None  # where the resized caches go (default: the user cache folder)
    on_error: str = "skip"  # skip (name the bad file and go on) | raise (stop at the first bad file)
    max_megapixels: float = 100.0  # larger images are skipped from their header, before decoding (pixel bombs)


SYNTHETIC_KEYS = tuple(f.name for f in dataclasses.fields(SyntheticConfig))
REAL_DATA_KEYS = tuple(f.name for f in dataclasses.fields(RealDataConfig))
# configs written before the data section was split (run folders, checkpoints, YAML files) keep loading
MOVED_KEYS = {
    **{f"data.{k}": f"synthetic.{k}" for k in SYNTHETIC_KEYS},
    **{f"data.{k}": f"real.{k}" for k in REAL_DATA_KEYS},
}


@dataclass
class MethodConfig:
    """Training algorithm and loss weights (paper: dice x5, FixMatch x0.25, KL x0.01, threshold 0.7)."""

    name: str = "multimix"  # multimix (the training algorithm; the SimCLRv2 route has its own commands)
    cls_ssl: bool = True  # FixMatch on the unlabeled classification images
    seg_ssl: bool = True  # the KL term on the unlabeled segmentation images
    dice_weight: float = 5.0  # labeled lung masks: Dice loss
    ce_weight: float = 1.0  # labeled classes: cross-entropy
    fixmatch_weight: float = 0.25  # pseudo-labeled strong views
    kl_weight: float = 0.01  # unlabeled masks against the labeled ones
    threshold: float = 0.7  # confidence a pseudo-label needs (threshold_mode fixed)
    class_weights: str = "none"  # none | balanced: cross-entropy weights from the labeled class counts
    kl_reference: str = "paired"  # paired | mean: which labeled mask the KL term compares an unlabeled mask with
    ssl_rampup_steps: int = 300  # unsupervised terms ramp in over these steps (0 = the paper: full weight at once)
    supervised_warmup_steps: int = 0  # steps of labeled losses alone before FixMatch, KL and the domain head switch on
    # fixed | freematch (self-adaptive global and class-wise) | flexmatch (class-wise, from the
    # learning effect of each class over the unlabeled pool)
    threshold_mode: str = "fixed"
    distribution_alignment: str = "none"  # none | labeled | uniform: target class distribution of the pseudo-labels
    teacher: str = "model"  # model | ema: which weights make the pseudo-labels (ema needs train.ema_decay > 0)
    lung_weight: float = 1.0  # the coarse lung map of model.cls_pooling=lung (BCE against the labeled masks)
    domain_weight: float = 0.0  # > 0: domain-adversarial features (classification sources vs every other source)
    mask_pseudo_weight: float = (
        0.0  # > 0: Dice against the teacher's cleaned masks of the unlabeled segmentation images
    )
    optimizer: str = "adam"  # adam | adamw | sgd (learning rate, weight decay and schedule: the train section)


@dataclass
class InferenceConfig:
    """How evaluation and prediction turn the model's outputs into masks."""

    seg_threshold: float = 0.5  # lung probability above which a pixel is lung
    clean_masks: bool = False  # keep the two largest lung regions and fill their holes
    drop_edge_regions: bool = False  # clean-up: a region reaching the image's left/right edge is air, not lung
    flip_tta: bool = False  # average each image's outputs with its mirror image's (test-time flip)


CLS_INPUTS = ("image", "lung_crop")  # model.cls_input: what the class head sees
SELECT_BY = ("accuracy", "balanced_accuracy", "auroc")  # train.select_by: validation metric averaged with Dice


@dataclass
class TrainConfig:
    """The generic loop: length, optimiser, schedule, precision, checkpoints."""

    steps: int | None = None  # optimiser steps; null: epochs x steps_per_epoch
    epochs: int = 10  # with steps null: length in epochs
    steps_per_epoch: int = 160  # steps between validations and checkpoints
    lr: float = 2e-3  # peak learning rate
    weight_decay: float = 1e-5  # of the optimiser
    schedule: str = "cosine"  # cosine | constant (after the warm-up)
    warmup_steps: int = 50  # linear learning-rate warm-up
    grad_clip: float = 5.0  # gradient norm clip (0: off)
    ema_decay: float = 0.0  # > 0: keep an exponential moving average of the weights
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool = False  # channels-last memory format (faster convolutions on some GPUs)
    seed: int = 0  # label draw, initialisation and augmentation
    log_every: int = 10  # steps between logged losses
    eval_batch_size: int = 32  # images per batch at validation and evaluation
    select_by: str = "accuracy"  # best.pt: mean of this validation metric (accuracy|balanced_accuracy|auroc) and Dice
    out: str | None = None  # the run folder (default runs/<name>)
    name: str | None = None  # the run's name (default from the model and budgets)

    @property
    def total_steps(self) -> int:
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch


@dataclass
class SSLConfig:
    """Self-supervised pretraining (``multimix pretrain``): stage 1 of the SimCLRv2 route."""

    method: str = "simclr"  # simclr | barlow
    backbone: str = "unet"  # unet (the MultiMix encoder, widths from model.widths) | resnet18 | resnet50
    width_multiplier: float = 1.0  # resnet backbones only
    proj_depth: int = 3  # SimCLRv2 projection head layers
    proj_dim: int = 128  # output size of the projection head
    temperature: float = 0.1  # NT-Xent
    barlow_lambda: float = 5e-3  # Barlow Twins off-diagonal weight
    barlow_dims: list[int] = field(default_factory=lambda: [512])  # one 512-unit layer: the chest X-ray choice
    crop_scale_min: float = 0.5  # smallest crop area of a view
    # stage 2 (multimix finetune)
    pretrained: str | None = None  # a stage-1 checkpoint; None fine-tunes ssl.backbone from random weights
    from_proj_layer: int = 1  # projection-head layers kept under the linear classifier (SimCLRv2: 1)
    optimizer: str = "adam"  # of pretraining and fine-tuning: adam | adamw | sgd


@dataclass
class DistillConfig:
    """Stage 3 of the SimCLRv2 route (``multimix distill``): a smaller student learns the
    teacher's soft predictions on unlabeled images."""

    teacher: str | None = None  # a trained checkpoint with a class head (fine-tuned, or any MultiMix run)
    backbone: str = "unet"  # the student: unet | resnet18 | resnet50
    widths: list[int] | None = None  # unet student; None = half of model.widths
    width_multiplier: float = 1.0  # resnet student
    temperature: float = 1.0  # of the teacher's and student's softmax
    labeled_weight: float = 0.0  # > 0 adds the cross-entropy on the teacher run's labeled images
    optimizer: str = "adam"  # adam | adamw | sgd


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    real: RealDataConfig = field(default_factory=RealDataConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    ssl: SSLConfig = field(default_factory=SSLConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "config") -> Config:
        """Build from nested plain data; unknown sections or keys raise ``ValueError`` naming them."""
        config = cls()
        apply_mapping(config, data, origin=origin)
        return config


def _section_types() -> dict[str, Any]:
    return {f.name: f.type for f in dataclasses.fields(Config)}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the field's declared type (``int | None``, ``list[int]``, ...)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        annotation = next(a for a in args if a is not type(None))
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if isinstance(value, str):
            value = [item.strip() for item in value.strip("[]").split(",") if item.strip()]
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected a list, got {value!r}")
        return [_coerce(item, item_type, key) for item in value]
    if annotation is bool:
        if isinstance(value, bool):
            return value
        lowered = str(value).lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise ValueError(f"{key}: expected true/false, got {value!r}")
        return lowered in ("true", "1", "yes")
    if annotation in (int, float):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: expected a number, got {value!r}") from None
        if annotation is int:
            if not number.is_integer():
                raise ValueError(f"{key}: expected a whole number, got {value!r}")
            return int(number)
        return number
    if annotation is str:
        return str(value)
    return value


def apply_mapping(config: Config, data: dict[str, Any], *, origin: str) -> None:
    """Merge ``{section: {key: value}}`` into ``config`` in place."""
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: expected a mapping of sections, got {type(data).__name__}")
    for section_name, values in data.items():
        if section_name not in _section_types():
            raise ValueError(f"{origin}: unknown section {section_name!r}; expected one of {sorted(_section_types())}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ValueError(f"{origin}: section {section_name!r} must be a mapping")
        for key, value in values.items():
            set_value(config, f"{section_name}.{key}", value, origin=origin)


def set_value(config: Config, dotted_key: str, value: Any, *, origin: str = "override") -> None:
    """Set ``section.key`` to ``value`` (coerced to the field's type)."""
    dotted_key = MOVED_KEYS.get(dotted_key, dotted_key)
    section_name, _, key = dotted_key.partition(".")
    if section_name not in _section_types() or not key:
        raise ValueError(
            f"{origin}: {dotted_key!r} is not of the form section.key with section in {sorted(_section_types())}"
        )
    section = getattr(config, section_name)
    names = {f.name for f in dataclasses.fields(section)}
    if key not in names:
        raise ValueError(f"{origin}: unknown key {dotted_key!r}; {section_name} has {sorted(names)}")
    annotation = typing.get_type_hints(type(section))[key]
    setattr(section, key, _coerce(value, annotation, dotted_key))
