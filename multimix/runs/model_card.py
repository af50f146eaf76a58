"""A model card for a trained checkpoint: what it is, what it was trained on, how it decides and
how well it did, written as ``MODEL_CARD.md`` beside the run (``multimix card``; every training
run writes one when it ends).

Everything comes from files the run already holds: the checkpoint (config, network description,
class names and prior, operating point, validation metrics, library version and commit),
``split.json`` (images per stream and source), ``summary.json`` (held-out point metrics) and, when
``multimix evaluate`` has written one into ``<run>/evaluation``, its ``metrics.json`` (every metric
with its confidence interval).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from multimix.config import Config
from multimix.config.run_info import RunInfo
from multimix.data.pools import unlabeled_source_names
from multimix.evaluation.summary import NO_RANKING, fitted_here_note
from multimix.metrics.calibration import CHECKPOINT_KEY as CALIBRATION_KEY
from multimix.metrics.operating_point import OperatingPoint
from multimix.models.factory import model_heads
from multimix.runs.folder import run_folder
from multimix.utils.atomic import atomic_write_text
from multimix.utils.checkpoints import check_output_path, load_checkpoint

CARD_NAME = "MODEL_CARD.md"
MIN_VALIDATION_IMAGES = 20  # below this a checkpoint choice is mostly noise
MIN_CALIBRATION_IMAGES = 50  # per class, for a temperature and bias worth trusting
CITATION = (
    "Haque, Imran, Wang, Terzopoulos. MultiMix: Sparingly-Supervised, Extreme Multitask Learning from "
    "Medical Images. ISBI 2021; and Generalized Multi-Task Learning from Substantially Unlabeled "
    "Multi-Source Medical Image Data, MELBA 2021. The library: see its CITATION.cff."
)
INTENDED_USE = (
    "Research use only: not a medical device, not for diagnosis or treatment decisions. The class "
    "and lung-mask outputs are meant for studying semi-supervised multitask learning on chest "
    "X-rays; any clinical use needs validation on the target site and a regulatory pathway."
)
LIMITS = (
    "Two classes only (normal / pneumonia); trained with few labels; probabilities are calibrated "
    "to the training class mix unless an operating point says otherwise; performance drops on "
    "hospitals, patient ages and devices the training data did not include (see the cross-domain "
    "rows); lung masks of children and of severe opacities are the weakest."
)


def card_facts(checkpoint: str | Path) -> dict[str, Any]:
    """The model card's content as plain data (see the module docstring for the sources)."""
    path = Path(checkpoint)
    state = load_checkpoint(path)
    if not RunInfo.recorded(state):
        raise ValueError(f"{path}: not a training checkpoint (it carries no run config)")
    run = RunInfo.from_checkpoint(state, origin=str(path))
    cfg = Config.from_dict(run.config, origin=str(path))
    folder = run_folder(path)
    point = OperatingPoint.from_checkpoint(state)
    return {
        "checkpoint": str(path),
        "run": folder.name,
        "network": run.network or {"class": cfg.model.name, "kwargs": {"widths": list(cfg.model.widths)}},
        "stage": run.stage,
        "classifier": _has_classifier(run, cfg),
        "class_names": list(run.class_names),
        "class_prior": None if run.class_prior is None else list(run.class_prior),
        "decision": {"threshold": point.threshold, "how": point.describe(), "details": point.details},
        "calibration": state.get(CALIBRATION_KEY),
        "preprocessing": _preprocessing(cfg),
        "training_data": _training_data(cfg, folder / "split.json"),
        "validation": {"step": state.get("step"), "metrics": state.get("metrics") or {}},
        "held_out": _json(folder / "summary.json"),
        "evaluation": _json(folder / "evaluation" / "metrics.json"),
        "environment": run.environment,
        "precision": state.get("precision"),
        "sha256": file_sha256(path),
        "training": _hyper_parameters(cfg),
        "validation_images": len((_json(folder / "split.json") or {}).get("val", [])),
    }


def file_sha256(path: Path) -> str:
    """The checkpoint's SHA-256: which file a card describes, whatever it is renamed to."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hyper_parameters(cfg: Config) -> dict[str, Any]:
    return {
        "model": cfg.model.name,
        "steps": cfg.train.steps,
        "learning rate": cfg.train.lr,
        "batch size per stream": cfg.data.batch_size,
        "image size": cfg.data.image_size,
        "seed": cfg.train.seed,
        "pseudo-label threshold": cfg.method.threshold,
        "semi-supervised classification": cfg.method.cls_ssl,
        "unsupervised segmentation (KL)": cfg.method.seg_ssl,
    }


def model_warnings(facts: dict[str, Any]) -> list[str]:
    """What a reviewer must know about *this* model, computed from its numbers: a tiny validation
    set, a class the model never calls, an AUROC interval that contains 0.5, a calibration fitted
    on few images of a class."""
    found = []
    val = facts.get("validation_images") or 0
    if 0 < val < MIN_VALIDATION_IMAGES:
        found.append(
            f"The checkpoint was chosen on {val} validation images: its validation scores say little, "
            "and another draw could have chosen another step."
        )
    for where, matrix in _confusion_matrices(facts):
        for index, name in enumerate(facts["class_names"][:2]):
            if sum(row[index] for row in matrix) == 0:
                found.append(f"On the {where} images the model never calls {name}: its threshold does not fit them.")
    for where, low, high in _auroc_intervals(facts):
        if low <= 0.5 <= high:
            found.append(
                f"On the {where} images the AUROC's 95% interval ({low:.3f}-{high:.3f}) contains 0.5: "
                "the model may rank them no better than chance."
            )
    stored = facts.get("calibration")
    if stored:
        per_class = {
            facts["class_names"][0]: stored["images"] * (1 - stored["prior"]),
            facts["class_names"][-1]: stored["images"] * stored["prior"],
        }
        few = [f"{name} {round(n)}" for name, n in per_class.items() if n < MIN_CALIBRATION_IMAGES]
        if few:
            found.append(
                f"Its calibration was fitted on few images of a class ({', '.join(few)}; fewer than "
                f"{MIN_CALIBRATION_IMAGES}): the temperature and bias are rough."
            )
    return found


def _confusion_matrices(facts: dict[str, Any]) -> list[tuple[str, list[list[int]]]]:
    evaluation = facts.get("evaluation") or {}
    found = []
    for model in evaluation.get("models", [])[:1]:
        for domain, summary in model["domains"].items():
            block = summary.get("classification") or {}
            if block.get("confusion_matrix"):
                found.append((domain, block["confusion_matrix"]))
    return found


def _auroc_intervals(facts: dict[str, Any]) -> list[tuple[str, float, float]]:
    evaluation = facts.get("evaluation") or {}
    found = []
    for model in evaluation.get("models", [])[:1]:
        for domain, summary in model["domains"].items():
            auroc = ((summary.get("classification") or {}).get("metrics") or {}).get("auroc") or {}
            low, high = (auroc.get("ci") or [None, None])[:2]
            if low is not None and high is not None:
                found.append((domain, float(low), float(high)))
    return found


def _has_classifier(run: RunInfo, cfg: Config) -> bool:
    network = run.network or {}
    if network.get("class") == "MultiMixNet":
        return int(network.get("kwargs", {}).get("num_classes", 2)) > 0
    if network.get("class") == "SSLClassifier":
        return True
    return model_heads(cfg.model.name)[1]


def _decision_lines(facts: dict[str, Any]) -> list[str]:
    if not facts["classifier"]:
        return ["- **Classes**: none: this network draws lung masks only (no classifier, no decision threshold)"]
    return [
        f"- **Classes**: {', '.join(f'{i} = {n}' for i, n in enumerate(facts['class_names']))}",
        f"- **Decision**: call {facts['class_names'][-1]} when its probability reaches the operating point: "
        f"{facts['decision']['how']}",
        *_decision_warning(facts),
        f"- **Calibration** (label-free adaptation reads the posteriors through it): {_calibration(facts)}",
        f"- **Training class prior**: {_prior(facts)}",
    ]


def _preprocessing(cfg: Config) -> dict[str, Any]:
    return {
        "input": f"1 channel, {cfg.data.image_size}x{cfg.data.image_size} px (any size is resized), values in [0, 1]",
        "intensity": cfg.data.intensity,
        "lung_mask_threshold": cfg.inference.seg_threshold,
        "mask_clean_up": cfg.inference.clean_masks,
        "mask_clean_up_drops_edge_regions": cfg.inference.drop_edge_regions,
        "test_time_flip_averaging": cfg.inference.flip_tta,
    }


def _training_data(cfg: Config, split_file: Path) -> dict[str, Any]:
    data: dict[str, Any] = {
        "source": cfg.data.source,
        "budgets": {"lung masks": cfg.data.seg_labels, "class labels": cfg.data.cls_labels},
    }
    if cfg.data.source == "real":
        data["sources"] = {
            "segmentation": list(cfg.real.seg_sources),
            "classification": list(cfg.real.cls_sources),
            "unlabeled": unlabeled_source_names(cfg, cfg.real.cls_sources),
        }
    split = _json(split_file)
    if split:
        counts = {}
        for task in ("seg", "cls"):
            for part in ("labeled", "unlabeled"):
                uids = split.get(task, {}).get(part, [])
                # real uids are <source>/<path>; the generated images have no source folder
                counts[f"{task} {part}"] = dict(
                    Counter(uid.split("/")[0] if "/" in uid else "synthetic" for uid in uids)
                )
        data["images"] = counts
    return data


def _json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def render_card(facts: dict[str, Any]) -> str:
    """``MODEL_CARD.md`` from :func:`card_facts`: YAML front matter (as model hubs read it), then
    what the model is, how to use it, what it was trained on and how well it did."""
    env = facts["environment"]
    net = facts["network"]
    warnings = model_warnings(facts) if facts["classifier"] else []
    lines = [
        *_front_matter(facts),
        f"# Model card: {facts['run']}",
        "",
        f"- **Checkpoint**: `{facts['checkpoint']}` ({facts['stage']} run, precision {facts['precision']}), "
        f"SHA-256 `{facts['sha256']}`",
        f"- **Network**: {net.get('class')} {json.dumps(net.get('kwargs', {}), sort_keys=True)}",
        f"- **Library**: multimix {env.get('multimix', '?')}, commit {env.get('git_commit') or 'unknown'}, "
        f"torch {env.get('torch', '?')}; license MIT",
        *_decision_lines(facts),
        "",
        "## Warnings about this model",
        "",
        *([f"- **{w}**" for w in warnings] or ["- none found in its numbers (the general limits below still hold)"]),
        "",
        "## Intended use",
        "",
        INTENDED_USE,
        "",
        "## Limits",
        "",
        LIMITS,
        "",
        "## How to use",
        "",
        "```python",
        "from multimix.prediction import Predictor",
        "",
        f'predictor = Predictor("{Path(facts["checkpoint"]).name}")',
        'result = predictor.predict(["scan.png"])[0]  # .probabilities, .lung_mask, .saliency',
        "```",
        "",
        f"or `multimix predict scan.png --checkpoint {Path(facts['checkpoint']).name}`.",
        "",
        "## Input and preprocessing",
        "",
        *[f"- {k.replace('_', ' ')}: {v}" for k, v in facts["preprocessing"].items()],
        "",
        "## Training",
        "",
        *[f"- {k}: {v}" for k, v in facts["training"].items()],
        "",
        "## Training data",
        "",
        *_data_lines(facts["training_data"]),
        f"- validation images (chose the checkpoint): {facts['validation_images']}",
        "",
        "## Results",
        "",
        *_result_lines(facts),
        "",
        "## Citation",
        "",
        CITATION,
    ]
    return "\n".join(lines) + "\n"


def _front_matter(facts: dict[str, Any]) -> list[str]:
    tags = ["chest-x-ray", "lung-segmentation", "semi-supervised-learning", "multitask-learning"]
    if facts["classifier"]:
        tags.append("pneumonia-classification")
    return [
        "---",
        "license: mit",
        "library_name: multimix",
        f"tags: [{', '.join(tags)}]",
        f"model_name: {json.dumps(facts['run'])}",
        f"date: {datetime.now(timezone.utc).strftime('%Y-%m-%d')}",
        f"checkpoint_sha256: {facts['sha256']}",
        f"base_model_class: {facts['network'].get('class')}",
        "---",
        "",
    ]


def _decision_warning(facts: dict[str, Any]) -> list[str]:
    details = facts["decision"].get("details") or {}
    if details.get("ranks") is not False:
        return []
    low, high = details["auroc_ci"]
    return [
        f"  - **Warning**: on the images this threshold was calibrated on (AUROC {details['auroc']:.3f}, "
        f"95% CI {low:.3f}-{high:.3f}, sensitivity {details['sensitivity']:.3f}) {NO_RANKING}."
    ]


def _calibration(facts: dict[str, Any]) -> str:
    stored = facts.get("calibration")
    if not stored:
        return "not stored (trained before it was fitted; the posteriors are read as they are)"
    return (
        f"temperature {stored['temperature']:.3f}, bias {stored['bias']:+.3f}, fitted on the run's "
        f"{stored['images']} labeled validation images ({stored['prior']:.0%} pneumonia; "
        f"NLL {stored['nll_before']:.3f} -> {stored['nll_after']:.3f})"
    )


def _prior(facts: dict[str, Any]) -> str:
    prior = facts.get("class_prior")
    if not prior:
        return "not recorded"
    return ", ".join(f"{name} {p:.2f}" for name, p in zip(facts["class_names"], prior, strict=False))


def _data_lines(data: dict[str, Any]) -> list[str]:
    lines = [f"- data: {data['source']}", f"- label budgets: {data['budgets']}"]
    if "sources" in data:
        lines.append(f"- sources: {data['sources']}")
    for stream, counts in (data.get("images") or {}).items():
        total = sum(counts.values())
        lines.append(
            f"- {stream}: {total} images" + (f" ({', '.join(f'{s} {n}' for s, n in counts.items())})" if counts else "")
        )
    return lines


def _result_lines(facts: dict[str, Any]) -> list[str]:
    lines = []
    validation = facts["validation"]
    if validation["metrics"]:
        shown = ", ".join(f"{k} {v:.3f}" for k, v in validation["metrics"].items() if isinstance(v, float))
        lines.append(f"- validation (step {validation['step']}, chose this checkpoint): {shown}")
    evaluation = facts.get("evaluation")
    if evaluation and evaluation.get("models"):
        for domain, summary in evaluation["models"][0]["domains"].items():
            for task in ("classification", "segmentation"):
                block = summary.get(task)
                if not block:
                    continue
                cells = []
                for name, m in block["metrics"].items():
                    value = m.get("value", m.get("mean"))
                    low, high = m.get("ci", [None, None])
                    if value is not None and low is not None:
                        cells.append(f"{name} {value:.3f} [{low:.3f}, {high:.3f}]")
                if task == "classification" and "majority_accuracy" in block:
                    cells.append(f"majority-class accuracy {block['majority_accuracy']:.3f}")
                lines.append(f"- {domain} {task} (n = {block['num_images']}, 95% CI): " + ", ".join(cells))
                if task == "classification" and block.get("confusion_matrix"):
                    lines.append(f"  - {_confusion_line(block)}")
                if task == "classification" and block.get("ranks") is False:
                    lines.append(f"  - **{domain}: {NO_RANKING}.**")
                if task == "classification" and block.get("operating_point_fitted_images"):
                    fitted = fitted_here_note(block["operating_point_fitted_images"], block["num_images"])
                    lines.append(f"  - **{domain}: {fitted}.**")
    elif facts.get("held_out"):
        held = facts["held_out"]
        for domain in ("in_domain", "cross_domain"):
            if isinstance(held.get(domain), dict):
                shown = ", ".join(f"{k} {v:.3f}" for k, v in held[domain].items() if isinstance(v, float))
                lines.append(
                    f"- {domain.replace('_', '-')} test (point values; `multimix evaluate` adds intervals): {shown}"
                )
    return lines or ["- no held-out results in the run folder yet"]


def _confusion_line(block: dict[str, Any]) -> str:
    """Prevalence, the confusion matrix and sensitivity / specificity at the stored threshold."""
    (tn, fp), (fn, tp) = block["confusion_matrix"]
    positives, negatives = tp + fn, tn + fp
    sensitivity = f"{tp / positives:.3f}" if positives else "undefined"
    specificity = f"{tn / negatives:.3f}" if negatives else "undefined"
    share = positives / max(positives + negatives, 1)
    return (
        f"pneumonia prevalence {share:.1%}; at threshold {block['threshold']:.3f}: true negatives {tn}, "
        f"false positives {fp}, false negatives {fn}, true positives {tp} "
        f"(sensitivity {sensitivity}, specificity {specificity})"
    )


def write_card(checkpoint: str | Path, out: str | Path | None = None, *, force: bool = False) -> Path:
    """Write ``MODEL_CARD.md`` for ``checkpoint`` (default: in its run folder); returns the path.
    ``out`` is never the checkpoint itself, nor another checkpoint unless ``force``."""
    target = check_output_path(out, inputs=(checkpoint,), force=force) if out else run_folder(checkpoint) / CARD_NAME
    facts = card_facts(checkpoint)
    atomic_write_text(target, render_card(facts))
    return target
