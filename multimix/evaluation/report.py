"""Write an evaluation: ``metrics.json``, ``per_image.csv``, ``report.md`` and its figures.

The headline table is laid out like the paper's: one row per model and label budget, column
groups for in-domain classification, in-domain segmentation, cross-domain classification and
cross-domain segmentation, the best value of each column in bold.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multimix import __version__
from multimix.evaluation import figures
from multimix.evaluation.results import EvaluationSettings, ModelResult
from multimix.evaluation.summary import (
    EMPTY_MASK_RULE,
    HD_DEFINITION,
    LOWER_IS_BETTER,
    NO_RANKING,
    fitted_here_note,
    point_value,
)
from multimix.evaluation.tables import markdown_table, mean_sd_text, records_csv, sample_sd
from multimix.metrics import roc_curve
from multimix.utils.atomic import replaced_folder
from multimix.utils.csv_safe import SafeWriter

DOMAIN_ORDER = ("in-domain", "cross-domain", "sources")
PAPER_METRICS = (
    ("classification", "accuracy", "Acc"),
    ("classification", "f1_normal", "F1-N"),
    ("classification", "f1_pneumonia", "F1-P"),
    ("segmentation", "dice", "DS"),
    ("segmentation", "jaccard", "JS"),
    ("segmentation", "hd", "HD"),
)
CLS_COLUMNS = (
    ("accuracy", "Accuracy"),
    ("f1_normal", "F1-N"),
    ("f1_pneumonia", "F1-P"),
    ("precision", "Precision"),
    ("recall", "Recall"),
    ("specificity", "Specificity"),
    ("auroc", "AUROC"),
)
SEG_COLUMNS = (
    ("dice", "Dice"),
    ("jaccard", "Jaccard"),
    ("ssim", "SSIM"),
    ("hd", "HD px"),
    ("hd95", "HD95 px"),
    ("hd_mm", "HD mm"),
    ("hd95_mm", "HD95 mm"),
    ("precision", "Pixel precision"),
    ("recall", "Pixel recall"),
)
CSV_SEG_KEYS = ("dice", "jaccard", "ssim", "hd", "hd95", "hd_mm", "hd95_mm", "precision", "recall")


@dataclass
class TableRow:
    """One row of the paper table; each cell holds one value per seed (one for a single run)."""

    model: str
    seg_labels: str
    cls_labels: str
    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)  # (domain, metric) -> values


def table_rows(results: Sequence[ModelResult], *, group_seeds: bool = False) -> list[TableRow]:
    """Rows of the paper table; with ``group_seeds`` runs differing only in seed share a row."""
    rows: dict[tuple[str, ...], TableRow] = {}
    for i, r in enumerate(results):
        key = (r.model_name, r.seg_labels, r.cls_labels) if group_seeds else (str(i),)
        row = rows.setdefault(key, TableRow(r.model_name if group_seeds else r.label, r.seg_labels, r.cls_labels))
        for domain, d in r.domains.items():
            for task, metric, _ in PAPER_METRICS:
                value = point_value(d.summary, task, metric)
                if value is not None:
                    row.values.setdefault((domain, metric), []).append(value)
    return list(rows.values())


def _domains_of(rows: Sequence[TableRow]) -> list[str]:
    present = {domain for row in rows for domain, _ in row.values}
    return [d for d in DOMAIN_ORDER if d in present]


def _best(cells: list[list[float]], lower_better: bool) -> set[int]:
    means = [np.mean(v) if v else None for v in cells]
    valid = [m for m in means if m is not None]
    if not valid:
        return set()
    target = min(valid) if lower_better else max(valid)
    return {i for i, m in enumerate(means) if m is not None and np.isclose(m, target)}


def paper_table(rows: Sequence[TableRow]) -> str:
    """The headline table (markdown); best value per column in bold, HD lower-is-better."""
    domains = _domains_of(rows)
    columns = [(d, metric, f"{d} {name}") for d in domains for _, metric, name in PAPER_METRICS]
    cells = [[row.values.get((d, m), []) for d, m, _ in columns] for row in rows]
    body = [[row.model, row.seg_labels, row.cls_labels] for row in rows]
    for j, (_, metric, _) in enumerate(columns):
        best = _best([cells[i][j] for i in range(len(rows))], metric in LOWER_IS_BETTER)
        digits = 2 if metric in LOWER_IS_BETTER else 3
        for i in range(len(rows)):
            text = mean_sd_text(cells[i][j], f"{{:.{digits}f}}")
            body[i].append(f"**{text}**" if i in best and len(rows) > 1 else text)
    return markdown_table(["Model", "Seg labels", "Cls labels", *(c[2] for c in columns)], body)


def table_records(rows: Sequence[TableRow]) -> list[dict[str, Any]]:
    """The headline table as records: mean, sample sd and number of seeds of every cell."""
    domains = _domains_of(rows)
    keys = [(d, metric) for d in domains for _, metric, _ in PAPER_METRICS]
    records = []
    for row in rows:
        record: dict[str, Any] = {"model": row.model, "seg_labels": row.seg_labels, "cls_labels": row.cls_labels}
        for d, m in keys:
            v = row.values.get((d, m), [])
            record |= {
                f"{d}/{m}/mean": float(np.mean(v)) if v else None,
                f"{d}/{m}/std": sample_sd(v),
                f"{d}/{m}/n": len(v),
            }
        records.append(record)
    return records


def table_csv(rows: Sequence[TableRow]) -> str:
    """The headline table as CSV (:func:`table_records`)."""
    return records_csv(table_records(rows))


def _ci_cell(entry: dict[str, Any] | None, digits: int, with_std: bool) -> str:
    if entry is None:
        return "-"
    value = entry.get("value", entry.get("mean"))
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    if with_std:
        text += f" ± {entry['std']:.{digits}f}"
    low, high = entry["ci"]
    if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _ranking_notes(results: Sequence[ModelResult], domain: str) -> str:
    """One plain sentence per model that does not rank this domain's images, and one per model
    whose operating point was chosen on some of them."""
    notes = []
    for r in results:
        block = r.domains[domain].summary.get("classification", {}) if domain in r.domains else {}
        if block.get("ranks") is False:
            notes.append(f"- **{r.label}**: {NO_RANKING}.")
        if block.get("operating_point_fitted_images"):
            fitted = fitted_here_note(block["operating_point_fitted_images"], block["num_images"])
            notes.append(f"- **{r.label}**: {fitted} ({r.operating_point}).")
    return "\n\n" + "\n".join(notes) if notes else ""


def detail_tables(results: Sequence[ModelResult], domain: str) -> str:
    """Every metric of one domain with its 95% CI (segmentation also mean ± std)."""
    cls_rows, seg_rows = [], []
    present = {
        k
        for r in results
        if domain in r.domains
        for k in r.domains[domain].summary.get("segmentation", {}).get("metrics", {})
    }
    seg_columns = [(k, n) for k, n in SEG_COLUMNS if k in present]  # mm columns only where spacing is known
    for r in results:
        d = r.domains.get(domain)
        if d is None:
            continue
        if "classification" in d.summary:
            c = d.summary["classification"]
            cls_rows.append(
                [
                    r.label,
                    str(c["num_images"]),
                    *(_ci_cell(c["metrics"].get(k), 3, False) for k, _ in CLS_COLUMNS),
                    f"{c['majority_accuracy']:.3f}" if "majority_accuracy" in c else "-",
                ]
            )
        if "segmentation" in d.summary:
            s = d.summary["segmentation"]
            seg_rows.append(
                [
                    r.label,
                    str(s["num_images"]),
                    str(s["empty_predictions"]),
                    *(_ci_cell(s["metrics"].get(k), 2 if k in LOWER_IS_BETTER else 3, True) for k, _ in seg_columns),
                ]
            )
    parts = []
    if cls_rows:
        parts.append(
            f"### {domain}: classification\n\nValue [95% CI]; majority = the accuracy of calling every image "
            "the commoner class.\n\n"
            + markdown_table(["Model", "Images", *(n for _, n in CLS_COLUMNS), "Majority"], cls_rows)
            + _ranking_notes(results, domain)
        )
    if seg_rows:
        parts.append(
            f"### {domain}: segmentation\n\nMean ± std [95% CI of the mean].\n\n"
            + markdown_table(["Model", "Images", "Empty predictions", *(n for _, n in seg_columns)], seg_rows)
        )
    return "\n\n".join(parts)


def per_image_csv(results: Sequence[ModelResult]) -> str:
    """One row per model, domain and image."""
    out = io.StringIO()
    writer = SafeWriter(out)
    writer.writerow(
        [
            "model",
            "checkpoint",
            "domain",
            "uid",
            "source",
            "label",
            "prob_pneumonia",
            "prediction",
            "correct",
            "lung_fraction",
            *CSV_SEG_KEYS,
        ]
    )
    for r in results:
        for domain, d in r.domains.items():
            res, threshold = d.results, d.summary.get("classification", {}).get("threshold", 0.5)
            for i, uid in enumerate(res.uids):
                label = int(res.labels[i])
                prob = None if res.prob_pneumonia is None else float(res.prob_pneumonia[i])
                pred = None if prob is None else int(prob >= threshold)
                seg = [_csv_num(res.seg[k][i]) if k in res.seg else "" for k in CSV_SEG_KEYS]
                writer.writerow(
                    [
                        r.label,
                        r.checkpoint,
                        domain,
                        uid,
                        res.sources[i],
                        "" if label < 0 else label,
                        _csv_num(prob),
                        "" if pred is None else pred,
                        "" if pred is None or label < 0 else int(pred == label),
                        "" if res.pred_fraction is None else _csv_num(res.pred_fraction[i]),
                        *seg,
                    ]
                )
    return out.getvalue()


def _csv_num(x: float | None) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.6g}"


def metrics_json(results: Sequence[ModelResult], settings: EvaluationSettings) -> dict[str, Any]:
    """Everything ``report.md`` shows, machine-readable."""
    return {
        "multimix": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {
            "threshold": settings.threshold,
            "bootstrap_resamples": settings.boot.n_resamples,
            "confidence": settings.boot.confidence,
            "bootstrap_seed": settings.boot.seed,
        },
        "rules": {"empty_mask": EMPTY_MASK_RULE, "hd": HD_DEFINITION},
        "models": [
            {
                "label": r.label,
                "model": r.model_name,
                "checkpoint": r.checkpoint,
                "seg_labels": r.seg_labels,
                "cls_labels": r.cls_labels,
                "operating_point": r.operating_point,
                "image_size": r.config.data.image_size,
                "domains": {name: d.summary for name, d in r.domains.items()},
            }
            for r in results
        ],
    }


def write_figures(results: Sequence[ModelResult], folder: Path) -> dict[str, Path]:
    """Every figure of the report; returns caption -> path (figures without data are skipped)."""
    written: dict[str, Path] = {}
    domains = [d for d in DOMAIN_ORDER if any(d in r.domains for r in results)]
    dice = {
        r.label: {
            d: r.domains[d].results.seg["dice"][r.domains[d].results.has_mask]
            for d in domains
            if d in r.domains and "dice" in r.domains[d].results.seg
        }
        for r in results
    }
    dice = {m: v for m, v in dice.items() if any(len(x) for x in v.values())}
    if dice:
        written["Per-image Dice by model and domain"] = figures.dice_boxplot(dice, folder / "dice_boxplot.png")
    for domain in domains:
        path = _boundary_figure(results, domain, folder / f"boundaries_{_slug(domain)}.png")
        if path:
            written[f"Lung boundaries, {domain}: reference (green) vs prediction"] = path
    curves = _roc_inputs(results, domains)
    if curves:
        written["ROC curves"] = figures.roc_curves(curves, folder / "roc.png")
    for r in results:
        for domain, d in r.domains.items():
            if d.saliency is not None:
                s = d.saliency
                path = folder / f"saliency_{_slug(r.label)}_{_slug(domain)}.png"
                written[f"Saliency, {r.label}, {domain}"] = figures.saliency_overlays(
                    s.images, s.saliency, s.labels, s.predictions, s.probabilities, path, title=f"{r.label}, {domain}"
                )
    for r in results:
        path = _embedding_figure(r, folder / f"embedding_{_slug(r.label)}.png")
        if path:
            written[f"Encoder embedding (t-SNE), {r.label}: colour = label, marker = source"] = path
    return written


def _boundary_figure(results: Sequence[ModelResult], domain: str, path: Path) -> Path | None:
    """Reference vs predicted contours on the figure images every segmenting model has."""
    by_model = {r.label: _samples_by_uid(r, domain) for r in results if domain in r.domains}
    by_model = {label: samples for label, samples in by_model.items() if samples}
    if not by_model:
        return None
    first = next(iter(by_model.values()))
    shared = [u for u in first if all(u in samples for samples in by_model.values())]
    if not shared:
        return None
    base = [first[u] for u in shared]
    predictions = {label: np.stack([samples[u].prediction for u in shared]) for label, samples in by_model.items()}
    references = np.stack([s.reference if s.reference is not None else np.zeros_like(s.image, bool) for s in base])
    return figures.boundary_overlays(
        np.stack([s.image for s in base]), references, predictions, path, row_titles=shared
    )


def _samples_by_uid(r: ModelResult, domain: str) -> dict:
    """Kept samples with a predicted mask, by uid, in record order."""
    res = r.domains[domain].results
    return {res.uids[i]: res.samples[i] for i in sorted(res.samples) if res.samples[i].prediction is not None}


def _roc_inputs(
    results: Sequence[ModelResult], domains: Sequence[str]
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for r in results:
        for domain in domains:
            d = r.domains.get(domain)
            if d is None or d.results.prob_pneumonia is None:
                continue
            labeled = d.results.labels >= 0
            y = d.results.labels[labeled]
            if len(np.unique(y)) < 2:
                continue
            fpr, tpr, _ = roc_curve(d.results.prob_pneumonia[labeled], y)
            curves.setdefault(r.label, {})[domain] = (fpr, tpr)
    return curves


def _embedding_figure(r: ModelResult, path: Path) -> Path | None:
    parts = [d.results for d in r.domains.values() if d.results.embeddings is not None]
    if not parts or sum(len(p) for p in parts) < 5:
        return None
    embeddings = np.concatenate([p.embeddings for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    sources = [s for p in parts for s in p.sources]
    return figures.embedding_map(embeddings, labels, sources, path, title=r.label)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


REPORT_FILES = ("metrics.json", "per_image.csv", "table.csv", "report.md", "figures")


def write_report(results: Sequence[ModelResult], out: str | Path, settings: EvaluationSettings) -> Path:
    """Write ``metrics.json``, ``per_image.csv``, ``table.csv``, ``report.md`` and ``figures/`` as
    the folder ``out``, replacing an earlier report there whole: written into a temporary folder
    and moved into place when complete, so ``out`` never holds files of two evaluations."""
    out = Path(out)
    check_report_folder(out)
    with replaced_folder(out) as folder:
        (folder / "metrics.json").write_text(json.dumps(metrics_json(results, settings), indent=2))
        (folder / "per_image.csv").write_text(per_image_csv(results))
        rows = table_rows(results)
        (folder / "table.csv").write_text(table_csv(rows))
        figs = write_figures(results, folder / "figures")
        (folder / "report.md").write_text(report_markdown(results, rows, figs, folder, settings))
    return out / "report.md"


def check_report_folder(out: Path) -> None:
    """Refuse an ``out`` that holds anything but an earlier report: it is replaced whole."""
    if not out.exists():
        return
    if not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; choose another --out")
    others = sorted(p.name for p in out.iterdir() if p.name not in REPORT_FILES)
    if others:
        raise FileExistsError(
            f"{out} holds files that are not an evaluation report ({', '.join(others[:3])}); a report replaces "
            "its folder whole, so choose a new or empty --out"
        )


def _thresholds(results: Sequence[ModelResult]) -> str:
    """The operating point(s) the class decisions used, for the report's first line."""
    points = list(dict.fromkeys(r.operating_point for r in results))
    if len(points) == 1:
        return points[0]
    return "; ".join(f"{r.label}: {r.operating_point}" for r in results)


def report_markdown(
    results: Sequence[ModelResult],
    rows: Sequence[TableRow],
    figs: dict[str, Path],
    out: Path,
    settings: EvaluationSettings,
    *,
    title: str = "Evaluation report",
    intro: str = "",
) -> str:
    """The markdown report: headline table, per-domain detail tables, rules, figures."""
    domains = [d for d in DOMAIN_ORDER if any(d in r.domains for r in results)]
    lines = [
        f"# {title}",
        "",
        f"multimix {__version__}, {time.strftime('%Y-%m-%d %H:%M')}. Classification {_thresholds(results)}; "
        f"confidence intervals: {settings.boot.confidence:.0%} percentile bootstrap over images "
        f"({settings.boot.n_resamples} resamples, seed {settings.boot.seed}).",
        "",
    ]
    if intro:
        lines += [intro, ""]
    if results:
        lines += [
            "| Model | Checkpoint | Image size |",
            "|---|---|---|",
            *(f"| {r.label} | `{r.checkpoint}` | {r.config.data.image_size} |" for r in results),
            "",
        ]
    lines += [
        "## Results",
        "",
        paper_table(rows),
        "",
        "Acc = accuracy, F1-N / F1-P = F1 of the normal / pneumonia class, DS = Dice, JS = Jaccard, HD = average "
        "Hausdorff distance in pixels (lower is better). Best value per column in bold.",
        "",
    ]
    for domain in domains:
        lines += [detail_tables(results, domain), ""]
    lines += ["## Rules", "", f"- {EMPTY_MASK_RULE}", f"- {HD_DEFINITION}", ""]
    if figs:
        lines += ["## Figures", ""]
        for caption, path in figs.items():
            lines += [f"**{caption}**", "", f"![{caption}]({path.relative_to(out).as_posix()})", ""]
    return "\n".join(lines)


def console_table(results: Sequence[ModelResult]) -> str:
    """A compact fixed-width summary for the terminal."""
    header = f"{'model':<28}{'domain':<14}{'n':>5}" + "".join(
        f"{name:>8}" for name in ("acc", "f1-n", "f1-p", "auroc", "dice", "jacc", "hd", "hd95")
    )
    lines = [header, "-" * len(header)]
    for r in results:
        for domain, d in r.domains.items():

            def cell(task: str, metric: str, digits: int = 3, d=d) -> str:
                v = point_value(d.summary, task, metric)
                return f"{v:>8.{digits}f}" if v is not None else f"{'-':>8}"

            lines.append(
                f"{r.label[:27]:<28}{domain:<14}{d.summary['num_images']:>5}"
                + cell("classification", "accuracy")
                + cell("classification", "f1_normal")
                + cell("classification", "f1_pneumonia")
                + cell("classification", "auroc")
                + cell("segmentation", "dice")
                + cell("segmentation", "jaccard")
                + cell("segmentation", "hd", 2)
                + cell("segmentation", "hd95", 2)
            )
    return "\n".join(lines)
