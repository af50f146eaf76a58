"""Training algorithms, one file each, registered by name (:func:`build_method`): ``multimix``
(with the paper's baselines as flags), ``simclr``, ``barlow``, ``finetune``, ``distill``; the
pseudo-label threshold policies likewise (:mod:`multimix.methods.thresholds`)."""

from multimix.methods.barlow import BarlowTwinsMethod
from multimix.methods.base import METHODS, Method, available_methods, build_method, method_class, register_method
from multimix.methods.distill import DistillationMethod
from multimix.methods.finetune import FineTuneMethod
from multimix.methods.flexmatch import FlexMatchThreshold
from multimix.methods.multimix import MultiMixMethod
from multimix.methods.simclr import PretrainNet, SimCLRMethod

__all__ = [
    "METHODS",
    "BarlowTwinsMethod",
    "DistillationMethod",
    "FineTuneMethod",
    "FlexMatchThreshold",
    "Method",
    "MultiMixMethod",
    "PretrainNet",
    "SimCLRMethod",
    "available_methods",
    "build_method",
    "method_class",
    "register_method",
]
