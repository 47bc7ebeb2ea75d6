"""The evaluation report's PNG plots: ROC, precision-recall, confusion matrix and calibration
for a classifier (one-vs-rest curves and an N x N matrix for more than two classes), residuals
and predicted-vs-actual for a regressor. ``matplotlib.figure.Figure`` with the Agg canvas
directly: no pyplot, no global backend switch."""

from __future__ import annotations

import io
from typing import Any

from mlops_provider.core import html as h

MAX_CLASS_CURVES = 20

MAX_CURVE_POINTS = 1500
MAX_SCATTER_POINTS = 5000
_CHALLENGER_COLOR = "#1f77b4"
_CHAMPION_COLOR = "#ff7f0e"


def _thin(*arrays, max_points: int = MAX_CURVE_POINTS):
    """Every array downsampled to at most ``max_points`` evenly spaced indices (first and last kept)."""
    import numpy as np

    n = len(arrays[0])
    if n <= max_points:
        return arrays
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return tuple(a[idx] for a in arrays)


def _new_figure(width: float = 6.4, height: float = 5.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _note(ax, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=10,
        color="#c5221f",
        wrap=True,
    )


def plotted_models(challenger, champion) -> list[tuple[str, Any, str]]:
    out = [("challenger", challenger, _CHALLENGER_COLOR)]
    if champion is not None:
        out.append(("champion", champion, _CHAMPION_COLOR))
    return out


# --------------------------------------------------------------------------- classification plots
def roc_png(y_pos, models, two_classes: bool) -> bytes:
    from sklearn.metrics import auc, roc_curve

    fig = _new_figure()
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa0a6", linewidth=1, label="chance")
    if two_classes:
        for name, score, color in models:
            fpr, tpr, _ = roc_curve(y_pos, score)
            area = auc(fpr, tpr)
            fpr, tpr = _thin(fpr, tpr)
            ax.plot(fpr, tpr, color=color, linewidth=1.8, label=f"{name} (AUC = {area:.4f})")
    else:
        _note(ax, "ROC undefined: the evaluation data has a single class")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="False positive rate",
        ylabel="True positive rate",
        title="ROC curve",
    )
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return _png(fig)


def pr_png(y_pos, models, two_classes: bool) -> bytes:
    from sklearn.metrics import average_precision_score, precision_recall_curve

    fig = _new_figure()
    ax = fig.add_subplot()
    base = float(y_pos.mean()) if len(y_pos) else 0.0
    ax.axhline(base, linestyle="--", color="#9aa0a6", linewidth=1, label=f"positive rate ({base:.3f})")
    if two_classes:
        for name, score, color in models:
            precision, recall, _ = precision_recall_curve(y_pos, score)
            ap = average_precision_score(y_pos, score)
            recall, precision = _thin(recall, precision)
            ax.step(
                recall, precision, where="post", color=color, linewidth=1.8, label=f"{name} (AP = {ap:.4f})"
            )
    else:
        _note(ax, "Precision-recall undefined: the evaluation data has a single class")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    return _png(fig)


def binary_confusion(y_pos, score):
    """The 2 x 2 confusion matrix (rows: actual negative/positive; columns: predicted) at 0.5."""
    import numpy as np

    y_pos = np.asarray(y_pos, dtype=bool)
    pred = np.asarray(score) >= 0.5
    return np.array(
        [[np.sum(~y_pos & ~pred), np.sum(~y_pos & pred)], [np.sum(y_pos & ~pred), np.sum(y_pos & pred)]]
    )


def confusion_pngs(y_pos, models, positive_label: Any) -> dict[str, bytes]:
    """A binary classifier's confusion matrices at threshold 0.5, one matrix per figure: counts and
    row-normalised (share of the actual class), for the challenger and (``_champion``) the champion."""
    labels = ["negative", f"positive ({_class_label(positive_label)})"]
    out: dict[str, bytes] = {}
    for name, score, _color in models:
        suffix = "" if name == "challenger" else f"_{name}"
        cm = binary_confusion(y_pos, score)
        for normalized in (False, True):
            fig = confusion_figure(cm, labels, name, normalized=normalized, xlabel="Predicted (at 0.5)")
            out[f"confusion{suffix}{'_normalized' if normalized else ''}.png"] = _png(fig)
    return out


# Text in a confusion matrix is never smaller than this (points; at the figures' 100 dpi 1 pt is
# 1.39 px, so 9 pt is 12.5 px on screen at 1x).
MIN_FONT_PT = 9.0


def confusion_figure(cm, labels: list[str], name: str, *, normalized: bool, xlabel: str = "Predicted"):
    """One confusion matrix in one figure: counts, or row-normalised (each actual class's row sums to
    1). The figure grows with the number of classes instead of the text shrinking: every label is at
    least ``MIN_FONT_PT``; cell values are written up to 15 classes."""
    import numpy as np

    cm = np.asarray(cm)
    k = len(labels)
    matrix = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalized else cm
    numbers = k <= 15
    cell = 0.62 if numbers else 0.26
    longest = max((len(t) for t in labels), default=1)
    margin = 1.2 + min(longest, 24) * 0.075  # room for the class names on the y axis
    side = max(3.4, cell * k)
    fig = _new_figure(side + margin + 1.3, side + margin + 0.5)
    ax = fig.add_subplot()
    im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalized else (matrix.max() or 1))
    font = max(MIN_FONT_PT, 11.0 if k <= 4 else 10.0 if k <= 8 else MIN_FONT_PT)
    if numbers:
        top = 1 if normalized else (matrix.max() or 1)
        total = max(int(cm.sum()), 1)
        for i in range(k):
            for j in range(k):
                if normalized:
                    text = f"{matrix[i, j]:.2f}"
                elif k <= 4:
                    text = f"{cm[i, j]:,}\n({100 * cm[i, j] / total:.1f}%)"
                else:
                    text = f"{cm[i, j]:,}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="white" if matrix[i, j] > top / 2 else "#1d2330",
                )
    rotate = k > 4 or longest > 14
    ax.set_xticks(range(k), labels, rotation=45 if rotate else 0, ha="right" if rotate else "center")
    ax.set_yticks(range(k), labels)
    ax.tick_params(labelsize=font)
    what = "share of the actual class (rows sum to 1)" if normalized else "counts"
    ax.set_xlabel(xlabel, fontsize=font + 1)
    ax.set_ylabel("Actual", fontsize=font + 1)
    ax.set_title(f"{name.capitalize()}: {what}", fontsize=font + 2)
    bar = fig.colorbar(im, ax=ax, shrink=0.8)
    bar.ax.tick_params(labelsize=MIN_FONT_PT)
    return fig


def calibration_png(y_pos, models, two_classes: bool) -> bytes:
    import numpy as np
    from sklearn.calibration import calibration_curve

    fig = _new_figure(6.4, 6.0)
    ax, hist = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa0a6", linewidth=1, label="perfectly calibrated")
    probabilities = all(len(s) == 0 or (np.min(s) >= 0 and np.max(s) <= 1) for _, s, _ in models)
    if not probabilities:
        _note(ax, "Scores are not probabilities in [0, 1]; no reliability curve")
    elif not two_classes:
        _note(ax, "Reliability curve undefined: the evaluation data has a single class")
    else:
        for name, score, color in models:
            frac_pos, mean_pred = calibration_curve(y_pos, score, n_bins=10, strategy="uniform")
            ax.plot(mean_pred, frac_pos, marker="o", color=color, linewidth=1.8, label=name)
    ax.set(
        xlim=(0, 1), ylim=(0, 1.01), ylabel="Observed positive rate", title="Calibration (reliability curve)"
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    if probabilities:
        bins = np.linspace(0, 1, 41)
        for name, score, color in models:
            hist.hist(score, bins=bins, histtype="step", color=color, linewidth=1.5, label=name)
    hist.set(xlabel="Predicted probability of the positive class", ylabel="Rows")
    return _png(fig)


# --------------------------------------------------------------------------- multiclass plots
def _class_label(c: Any, limit: int = 24) -> str:
    text = h.readable(c)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def confusion_multiclass_pngs(y, pred, classes, name: str) -> dict[str, bytes]:
    """The N x N confusion matrices of one model, one per figure: ``counts`` and ``normalized``
    (row-normalised: recall of each actual class on the diagonal)."""
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(y, pred, labels=list(classes))
    labels = [_class_label(c) for c in classes]
    return {
        "counts": _png(confusion_figure(cm, labels, name, normalized=False)),
        "normalized": _png(confusion_figure(cm, labels, name, normalized=True)),
    }


def one_vs_rest_png(y, proba, classes, name: str, kind: str) -> bytes:
    """One-vs-rest ROC (``kind="roc"``) or precision-recall curves of one model, a curve per class
    (the ``MAX_CLASS_CURVES`` most frequent), with each class's AUC / AP in the legend."""
    import numpy as np
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    fig = _new_figure(7.2, 5.6)
    ax = fig.add_subplot()
    counts = [(int(np.sum(y == c)), j) for j, c in enumerate(classes)]
    shown = [j for n, j in sorted(counts, key=lambda t: (-t[0], t[1]))[:MAX_CLASS_CURVES] if n > 0]
    if kind == "roc":
        ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa0a6", linewidth=1)
    for j in shown:
        yt = np.asarray(y == classes[j])
        if yt.all():
            continue
        if kind == "roc":
            fpr, tpr, _ = roc_curve(yt, proba[:, j])
            area = auc(fpr, tpr)
            fpr, tpr = _thin(fpr, tpr)
            ax.plot(fpr, tpr, linewidth=1.4, label=f"{_class_label(classes[j])} (AUC {area:.3f})")
        else:
            precision, recall, _ = precision_recall_curve(yt, proba[:, j])
            recall, precision = _thin(recall, precision)
            ax.step(
                recall,
                precision,
                where="post",
                linewidth=1.4,
                label=f"{_class_label(classes[j])} (AP {average_precision_score(yt, proba[:, j]):.3f})",
            )
    if kind == "roc":
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="False positive rate",
            ylabel="True positive rate",
            title=f"{name.capitalize()}: one-vs-rest ROC curves",
        )
    else:
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="Recall",
            ylabel="Precision",
            title=f"{name.capitalize()}: one-vs-rest precision-recall curves",
        )
    ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=7 if len(shown) > 8 else 9)
    ax.grid(alpha=0.3)
    return _png(fig)


# --------------------------------------------------------------------------- regression plots
def _scatter_sample(n: int):
    import numpy as np

    if n <= MAX_SCATTER_POINTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_SCATTER_POINTS, replace=False))


def residuals_png(y, models) -> bytes:
    fig = _new_figure()
    ax = fig.add_subplot()
    idx = _scatter_sample(len(y))
    for name, pred, color in models:
        ax.scatter(pred[idx], (y - pred)[idx], s=6, alpha=0.35, color=color, label=name, linewidths=0)
    ax.axhline(0, color="#5f6368", linewidth=1)
    note = f" (sample of {len(idx):,} of {len(y):,})" if len(idx) < len(y) else ""
    ax.set(xlabel="Predicted", ylabel="Residual (actual - predicted)", title="Residuals" + note)
    ax.legend(loc="best", markerscale=3)
    ax.grid(alpha=0.3)
    return _png(fig)


def pred_vs_actual_png(y, models) -> bytes:
    import numpy as np

    fig = _new_figure()
    ax = fig.add_subplot()
    idx = _scatter_sample(len(y))
    for name, pred, color in models:
        ax.scatter(y[idx], pred[idx], s=6, alpha=0.35, color=color, label=name, linewidths=0)
    if len(y):
        lo = float(np.nanmin([np.nanmin(y)] + [np.nanmin(p) for _, p, _ in models]))
        hi = float(np.nanmax([np.nanmax(y)] + [np.nanmax(p) for _, p, _ in models]))
        ax.plot([lo, hi], [lo, hi], linestyle="--", color="#5f6368", linewidth=1, label="perfect")
    note = f" (sample of {len(idx):,} of {len(y):,})" if len(idx) < len(y) else ""
    ax.set(xlabel="Actual", ylabel="Predicted", title="Predicted vs actual" + note)
    ax.legend(loc="best", markerscale=3)
    ax.grid(alpha=0.3)
    return _png(fig)
