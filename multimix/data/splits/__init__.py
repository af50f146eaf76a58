"""Label budgets, patient-grouped selection of labeled examples, and saved split files.

Vocabulary
    *budget*: how many examples get their label/mask used for training. Given as an int count,
    a percentage string (``"5%"``), or ``None`` / ``"all"`` for the whole pool.
    *group*: a patient id. Whenever groups are used, all images of one patient land on the same
    side (labeled vs unlabeled, or train vs val vs test), so no patient leaks across. An empty
    or ``None`` patient id means "unknown" and the image is treated as its own patient.

Selection rule with groups (``select_labeled``)
    The budget counts images. Per-stratum image quotas are computed first (largest-remainder
    rounding of the budget over class frequencies; see ``_quotas``). Patients are then visited
    in a seeded random order and taken whole when all their images fit in the remaining per-class
    quotas. A second pass over the leftover patients (same order) takes any patient that still
    fits in the *total* budget, trading a little class balance for getting closer to the budget.
    The budget is never exceeded; when it is not met exactly, every unselected patient has more
    images than the shortfall. Without groups every image is its own patient, so quotas and the
    budget are met exactly.
"""

from multimix.data.splits.budgets import Budget, parse_budget, resolve_budget
from multimix.data.splits.building import build_split, with_extra_unlabeled
from multimix.data.splits.sampling import OFFICIAL_SPLITS, holdout, select_labeled
from multimix.data.splits.split_file import SPLIT_FORMAT_VERSION, Split, SplitFileError, TaskSplit

__all__ = [
    "OFFICIAL_SPLITS",
    "SPLIT_FORMAT_VERSION",
    "Budget",
    "Split",
    "SplitFileError",
    "TaskSplit",
    "build_split",
    "holdout",
    "parse_budget",
    "resolve_budget",
    "select_labeled",
    "with_extra_unlabeled",
]
