"""Report figures, rendered to PNG with Matplotlib's Agg canvas.

Every function takes plain NumPy inputs, writes one PNG at ``path`` (creating parent folders, via
:func:`multimix.utils.atomic.atomic_write`, so a crash never leaves a half-written file) and returns
the path. Figures are built as standalone :class:`matplotlib.figure.Figure` objects, never
through ``pyplot``: no global figure registry, no window, safe to call from worker threads.

Models always take their colour from one fixed colour-blind-safe palette (Okabe-Ito), by their
position in the mapping passed in, so the same model keeps its colour across figures when the
caller keeps the order.

* :func:`dice_boxplot`: the distribution of a per-image segmentation score, one panel per
  evaluation domain (e.g. in-domain vs cross-domain), one box per model with every image as a
  jittered dot and the mean as a diamond. Shows both the typical quality and the failures.
* :func:`boundary_overlays`: a grid of X-rays (rows) by models (columns), each cell with the
  reference lung outline (solid) and the model's predicted outline (dashed) and its Dice.
  Shows *where* the masks disagree (apices, costophrenic angles, the cardiac border).
* :func:`saliency_overlays`: the classifier's saliency as a heat map over the X-ray, one row of
  correctly and one of wrongly classified images, each captioned with true and predicted class.
  Shows what the classification branch (and so the saliency bridge) attends to.
* :func:`roc_curves`: ROC curves per domain, one line per model with its AUC.
* :func:`embedding_map`: a 2-D t-SNE (or PCA) map of image embeddings, colour = class, marker =
  source dataset. Shows the domain gap: clusters by marker mean features separate the sites.
"""

from multimix.evaluation.figures.boundaries import boundary_overlays
from multimix.evaluation.figures.canvas import MODEL_COLOURS
from multimix.evaluation.figures.embedding import embed_2d, embedding_map
from multimix.evaluation.figures.roc import roc_curves
from multimix.evaluation.figures.saliency import saliency_overlays
from multimix.evaluation.figures.scores import dice_boxplot

__all__ = [
    "MODEL_COLOURS",
    "boundary_overlays",
    "dice_boxplot",
    "embed_2d",
    "embedding_map",
    "roc_curves",
    "saliency_overlays",
]
