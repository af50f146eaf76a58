"""multimix: sparingly supervised multitask learning (classification + segmentation) for chest X-rays."""

__version__ = "0.1.0"
