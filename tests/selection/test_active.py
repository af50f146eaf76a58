import numpy as np
import pytest
import torch

from multimix.data.splits import Split, TaskSplit
from multimix.data.synthetic import generate_records
from multimix.selection.active import (
    pool_probabilities,
    predictive_entropy,
    select_for_labeling,
    top_k,
    view_disagreement,
    with_new_labels,
)

from helpers import REPO_ROOT


def test_entropy_by_hand_and_ranking_of_constructed_logits():
    probs = np.array([[1.0, 0.0], [0.5, 0.5], [0.9, 0.1]])
    expected = [0.0, np.log(2), -(0.9 * np.log(0.9) + 0.1 * np.log(0.1))]
    np.testing.assert_allclose(predictive_entropy(probs), expected)
    logits = torch.tensor([[4.0, -4.0], [0.1, 0.0], [2.0, 0.0], [-1.0, 1.2], [0.0, 0.0]])
    scores = predictive_entropy(torch.softmax(logits, dim=1).numpy())
    assert top_k(scores, 3) == [4, 1, 2]  # closest to 50/50 first (a logit gap of 2.0 beats 2.2)


def test_disagreement_is_the_summed_variance_over_views():
    views = np.array([[[0.9, 0.1], [0.5, 0.5]], [[0.1, 0.9], [0.5, 0.5]]])
    np.testing.assert_allclose(view_disagreement(views), [0.32, 0.0])
    with pytest.raises(ValueError, match="V >= 2"):
        view_disagreement(views[:1])


def test_class_balanced_selection_alternates_predicted_classes():
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.05, 0.6])
    predicted = np.array([0, 0, 0, 1, 1, 0])
    assert sorted(top_k(scores, 4, predicted=predicted)) == [0, 1, 3, 4]
    with pytest.raises(ValueError, match="pool size"):
        top_k(scores, 7)


def test_selection_returns_k_distinct_pool_items_for_every_strategy():
    pool = generate_records(12, site="chex", image_size=32, seed=1)
    weights = torch.randn(32 * 32, 2, generator=torch.Generator().manual_seed(0))

    def classifier(images):
        return images.flatten(1) @ weights

    for strategy in ("entropy", "disagreement", "random"):
        chosen = select_for_labeling(
            classifier, pool, 5, strategy=strategy, image_size=32, views=3, class_balanced=True
        )
        assert len(chosen) == len(set(chosen)) == 5 and set(chosen) <= {r.uid for r in pool}
    assert select_for_labeling(None, pool, 4, strategy="random", seed=3) == select_for_labeling(
        None, pool, 4, strategy="random", seed=3
    )
    probs = pool_probabilities(classifier, pool, image_size=32, views=2)
    assert probs.shape == (2, 12, 2) and np.allclose(probs.sum(axis=2), 1)
    with pytest.raises(ValueError, match="needs a trained classifier"):
        select_for_labeling(None, pool, 3, strategy="entropy")
    with pytest.raises(ValueError, match="strategy must be one of"):
        select_for_labeling(classifier, pool, 3, strategy="margin")


def test_new_labels_move_from_the_unlabeled_pool_and_are_recorded(tmp_path):
    split = Split(
        seg=TaskSplit(["s1"], ["s2"]),
        cls=TaskSplit(["a"], ["b", "c", "d"]),
        val=[],
        test=[],
        cross=[],
        meta={"exclude_labeled_from_unlabeled": True},
    )
    new = with_new_labels(split, ["c", "b"], strategy="entropy")
    assert new.cls.labeled == ["a", "c", "b"] and new.cls.unlabeled == ["d"] and new.seg == split.seg
    assert new.meta["active_learning"] == {"task": "cls", "strategy": "entropy", "added": 2}
    new.save(tmp_path / "split.json")
    assert Split.load(tmp_path / "split.json").cls.labeled == ["a", "c", "b"]
    with pytest.raises(ValueError, match="not unlabeled cls images"):
        with_new_labels(split, ["a"])


def test_select_labels_cli_grows_the_label_set_and_train_accepts_the_split(tmp_path):
    import json
    import subprocess
    import sys

    from helpers import tiny_cli_args

    root = REPO_ROOT
    run = tmp_path / "run"
    train = [
        sys.executable,
        "scripts/train.py",
        "--seg-labels",
        "4",
        "--cls-labels",
        "8",
        "--steps",
        "2",
        "--no-progress",
        *tiny_cli_args(),
    ]
    assert (
        subprocess.run([*train, "--out", str(run)], capture_output=True, text=True, cwd=root, timeout=300).returncode
        == 0
    )
    new_split = tmp_path / "round1.json"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/select_labels.py",
            "--checkpoint",
            str(run / "checkpoints" / "best.pt"),
            "--k",
            "5",
            "--out",
            str(new_split),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    old, new = json.loads((run / "split.json").read_text()), json.loads(new_split.read_text())
    assert len(new["cls"]["labeled"]) == 13 and new["cls"]["labeled"][:8] == old["cls"]["labeled"]
    assert len(new["cls"]["unlabeled"]) == len(old["cls"]["unlabeled"]) - 5
    proc = subprocess.run(
        [*train, "--split", str(new_split), "--out", str(tmp_path / "round1")],
        capture_output=True,
        text=True,
        cwd=root,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "cls_x 13" in proc.stdout
