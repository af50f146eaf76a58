"""The map of reference embeddings an uploaded image is placed on (PCA of training images)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multimix.data.io import read_record_image
from multimix.data.records import Record
from multimix.prediction import Predictor


@dataclass
class ReferenceMap:
    """2-D PCA of reference embeddings; new embeddings are projected onto the same axes.

    PCA rather than t-SNE: t-SNE cannot place a new point without refitting the whole map (and
    takes seconds), while a PCA projection is one matrix product per upload.
    """

    mean: np.ndarray
    axes: np.ndarray  # (2, D)
    points: np.ndarray  # (N, 2)
    labels: np.ndarray  # (N,), -1 where unknown
    explained_variance: tuple[float, float]

    @classmethod
    def fit(cls, embeddings: np.ndarray, labels: Sequence[int]) -> ReferenceMap:
        """Fit the two principal axes of ``embeddings`` ``(N, D)``, N >= 3."""
        from sklearn.decomposition import PCA

        if len(embeddings) < 3:
            raise ValueError(f"a reference map needs at least 3 images, got {len(embeddings)}")
        pca = PCA(n_components=2, random_state=0).fit(embeddings)
        ratio = pca.explained_variance_ratio_
        return cls(
            pca.mean_,
            pca.components_,
            pca.transform(embeddings),
            np.asarray(labels),
            (float(ratio[0]), float(ratio[1])),
        )

    def project(self, embedding: np.ndarray) -> tuple[float, float]:
        x, y = (np.asarray(embedding) - self.mean) @ self.axes.T
        return float(x), float(y)

    def to_json(self, class_names: Sequence[str]) -> dict:
        names = {i: name for i, name in enumerate(class_names)}
        return {
            "method": "pca",
            "explained_variance": list(self.explained_variance),
            "points": [
                {"x": float(x), "y": float(y), "label": names.get(int(label), "unlabeled")}
                for (x, y), label in zip(self.points, self.labels, strict=True)
            ],
        }


def reference_from_records(
    predictor: Predictor, pool: Sequence[Record], count: int = 300, seed: int = 0
) -> ReferenceMap:
    """Embed up to ``count`` images of ``pool`` (the run layer passes the checkpoint's own
    classification training images) with ``predictor``; their labels colour the map."""
    if not pool:
        raise ValueError("the checkpoint's data config has no classification training images")
    rng = np.random.default_rng(seed)
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), size=min(count, len(pool)), replace=False))]
    embeddings = []
    for start in range(0, len(chosen), 32):
        images = [read_record_image(r) for r in chosen[start : start + 32]]
        embeddings += [p.embedding for p in predictor.predict(images) if p.embedding is not None]
    labels = [-1 if r.label is None else int(r.label) for r in chosen]
    return ReferenceMap.fit(np.stack(embeddings), labels)
