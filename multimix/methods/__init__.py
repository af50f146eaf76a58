"""Training algorithms: ``train_step(model, batch) -> (loss, logs)``."""

from .multimix import MultiMixMethod

__all__ = ["MultiMixMethod"]
