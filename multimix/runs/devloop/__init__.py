"""The real-data development loop: train variants of one config under one fixed budget, score each
on the checks that matter across hospitals, and print one table.

Every variant is an ordinary training run in ``<out>/<variant>/`` (finished runs are skipped, an
interrupted one resumes), so an ablation can be stopped and restarted at will. The scores:

* **in-domain**: the held-out classification images of the training sources (CheX), accuracy,
  F1 of each class and AUROC; the held-out segmentation images (JSRT), Dice and HD95, raw and with
  the lung-mask clean-up (:mod:`multimix.models.postprocess`);
* **adults called normal**: the share of the held-out segmentation images that the classifier
  calls normal. JSRT has no pneumonia case, so this is a specificity check on adults;
* **child masks broken**: the share of held-out CheX images whose raw lung mask is not two
  solid regions (more or fewer components, or holes). CheX has no masks, so this is the only
  pediatric segmentation signal the development data gives;
* **cross-domain**: every labeled cross-domain image (NIH adults), accuracy, F1-normal, AUROC;
  and Dice on cross-domain masks where a source has them; and accuracy / F1-normal at an operating
  point chosen for that hospital (:mod:`multimix.metrics.operating_point`), each on disjoint,
  patient-grouped halves: the threshold is chosen on one half and scores the other, both ways
  round ("adapted": label-free prior EM; "mixture": label-free score mixture; "calibrated":
  Youden's J on the half's labels);
* the run's wall time.

Beside the table, ``<out>/child_masks.png`` shows the raw lung outlines every variant draws on the
same held-out CheX (and NIH) images: a broken mask is easier to judge by eye than by a count.

Variants are config overrides (``section.key: value``) listed in a YAML file (see
``configs/dev/ablation.yaml``); each is trained with the same flags (``--steps``,
``--image-size``, ...), which a variant may override in its turn.

**Seeds.** With 100 labels the label draw alone moves accuracy by several points, so every
variant runs once per seed (``train.seed``: label draw, initialisation, augmentation and the
held-out draws), the same seeds for every variant, in ``<out>/<variant>/seed<k>/``; seeds are the
outer loop, so a grid stopped half-way already holds paired comparisons. The table gives the mean
± standard deviation over seeds of every column, the lowest validation F1-normal after the
supervised warm-up over every validation of every seed (a collapsed classifier shows as 0), and,
against a ``baseline`` variant, the paired difference per seed (mean ± sd): a difference smaller
than its spread is noise.
"""

from multimix.runs.devloop.figure import child_mask_figure
from multimix.runs.devloop.loop import run_devloop, variant_row
from multimix.runs.devloop.operating_points import held_out_operating_points, patient_halves
from multimix.runs.devloop.scoring import auroc_interval, broken_mask_share, majority_accuracy
from multimix.runs.devloop.tables import COLUMNS, format_report, format_table, paired_differences, summary_table
from multimix.runs.devloop.variants import Variant, load_variants, variant_config

__all__ = [
    "COLUMNS",
    "Variant",
    "auroc_interval",
    "broken_mask_share",
    "child_mask_figure",
    "format_report",
    "format_table",
    "held_out_operating_points",
    "load_variants",
    "majority_accuracy",
    "paired_differences",
    "patient_halves",
    "run_devloop",
    "summary_table",
    "variant_config",
    "variant_row",
]
