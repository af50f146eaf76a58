"""The run record every checkpoint carries (``state["run"]``): what run wrote it, typed and
versioned, with one writer (:meth:`RunInfo.to_dict`, called by the trainer's set-up) and one
reader (:meth:`RunInfo.from_checkpoint`); a record of an older format is brought up to date in
one place (:func:`migrate_run_record`).

The checkpoint's decision threshold and calibration are its own entries beside the record
(:mod:`multimix.metrics.operating_point`, :mod:`multimix.metrics.calibration`): ``adapt`` and
``calibrate`` replace them without touching what the training run recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

RUN_FORMAT = 2  # 1: the records of checkpoints written before the record carried its format
STAGES = ("train", "pretrain", "finetune", "distill")
DEFAULT_CLASS_NAMES = ("normal", "pneumonia")


@dataclass(frozen=True)
class RunInfo:
    """What a checkpoint says about the run that wrote it.

    Attributes:
        config: the resolved run config (``Config.to_dict``).
        stage: ``train`` (MultiMix and the baselines), ``pretrain``, ``finetune`` or ``distill``.
        environment: library, torch and machine versions (``environment.json``).
        class_names: the classifier's class names, negative class first.
        network: the network's class and constructor arguments
            (:func:`multimix.models.factory.describe_network`); ``None`` for a pretraining net.
        architecture: a pretraining, fine-tuned or distilled network's architecture description.
        class_prior: the training class shares the classifier's posteriors assume.
        format: the record's format (:data:`RUN_FORMAT`).
    """

    config: dict[str, Any]
    stage: str = "train"
    environment: dict[str, Any] = field(default_factory=dict)
    class_names: tuple[str, ...] = DEFAULT_CLASS_NAMES
    network: dict[str, Any] | None = None
    architecture: dict[str, Any] | None = None
    class_prior: tuple[float, ...] | None = None
    format: int = RUN_FORMAT

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"run stage must be one of {', '.join(STAGES)}, got {self.stage!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for a checkpoint (``torch.load(weights_only=True)`` reads it back)."""
        record = asdict(self)
        record["class_names"] = list(self.class_names)
        record["class_prior"] = None if self.class_prior is None else [float(p) for p in self.class_prior]
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any], *, origin: str = "run record") -> RunInfo:
        """A record of any format (migrated first); ``ValueError`` naming ``origin`` for one
        without a config, of a newer format, or with keys this version does not know."""
        record = migrate_run_record(record, origin=origin)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"{origin}: its run record holds {', '.join(unknown)}, which this version does not know")
        return cls(**record)

    @staticmethod
    def recorded(state: dict[str, Any]) -> bool:
        """Whether a loaded checkpoint ``state`` carries a run record with a config (what
        :meth:`from_checkpoint` needs), for callers that say in their own words what it is not."""
        record = state.get("run") if isinstance(state, dict) else None
        return isinstance(record, dict) and bool(record.get("config"))

    @classmethod
    def from_checkpoint(cls, state: dict[str, Any], *, origin: str) -> RunInfo:
        """The record of a loaded checkpoint ``state``."""
        record = state.get("run") if isinstance(state, dict) else None
        if not isinstance(record, dict) or record.get("config") is None:
            raise ValueError(f"{origin}: checkpoint carries no run config; was it written by multimix train?")
        return cls.from_dict(record, origin=origin)


def migrate_run_record(record: dict[str, Any], *, origin: str = "run record") -> dict[str, Any]:
    """``record`` in today's format. Format 1 (no ``format`` key) named no stage for a training
    run and no class names before they were stored; both get today's defaults, and keys of it
    that nothing reads are dropped."""
    record = dict(record)
    if record.get("config") is None:
        raise ValueError(f"{origin}: checkpoint carries no run config; was it written by multimix train?")
    version = int(record.pop("format", 1))
    if version > RUN_FORMAT:
        raise ValueError(f"{origin}: its run record is format {version}, newer than this multimix reads ({RUN_FORMAT})")
    if version == 1:  # keys older versions wrote and nothing reads any more
        record = {key: value for key, value in record.items() if key in _FIELDS}
    record.setdefault("stage", "train")
    record["class_names"] = tuple(record.get("class_names") or DEFAULT_CLASS_NAMES)
    if record.get("class_prior") is not None:
        record["class_prior"] = tuple(float(p) for p in record["class_prior"])
    return {**record, "format": RUN_FORMAT}


_FIELDS = frozenset(f.name for f in fields(RunInfo))
