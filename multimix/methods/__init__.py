"""Training algorithms: ``train_step(model, batch) -> (loss, logs)``."""

from multimix.methods.barlow import BarlowTwinsMethod
from multimix.methods.distill import DistillationMethod
from multimix.methods.finetune import FineTuneMethod
from multimix.methods.multimix import MultiMixMethod
from multimix.methods.simclr import PretrainNet, SimCLRMethod

__all__ = ["BarlowTwinsMethod", "DistillationMethod", "FineTuneMethod", "MultiMixMethod", "PretrainNet", "SimCLRMethod"]
