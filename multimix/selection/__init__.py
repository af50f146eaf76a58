"""Active learning: which unlabeled images to label next."""
