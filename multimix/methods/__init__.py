"""Training algorithms: ``train_step(model, batch) -> (loss, logs)``."""

from .barlow import BarlowTwinsMethod
from .multimix import MultiMixMethod
from .simclr import PretrainNet, SimCLRMethod

__all__ = ["BarlowTwinsMethod", "MultiMixMethod", "PretrainNet", "SimCLRMethod"]
