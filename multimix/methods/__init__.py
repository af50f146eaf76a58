"""Training algorithms: ``train_step(model, batch) -> (loss, logs)``."""

from .barlow import BarlowTwinsMethod
from .distill import DistillationMethod
from .finetune import FineTuneMethod
from .multimix import MultiMixMethod
from .simclr import PretrainNet, SimCLRMethod

__all__ = ["BarlowTwinsMethod", "DistillationMethod", "FineTuneMethod", "MultiMixMethod", "PretrainNet", "SimCLRMethod"]
