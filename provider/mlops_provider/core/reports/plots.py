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


def confusion_png(y_pos, models, positive_label: Any) -> bytes:
    import numpy as np

    fig = _new_figure(5.0 * len(models), 4.6)
    axes = fig.subplots(1, len(models), squeeze=False)[0]
    labels = ["negative", f"positive ({h.readable(positive_label)})"]
    n = max(len(y_pos), 1)
    for ax, (name, score, _color) in zip(axes, models, strict=True):
        pred = score >= 0.5
        cm = np.array(
            [[np.sum(~y_pos & ~pred), np.sum(~y_pos & pred)], [np.sum(y_pos & ~pred), np.sum(y_pos & pred)]]
        )
        ax.imshow(cm, cmap="Blues", vmin=0)
        top = cm.max() or 1
        for i in range(2):
            for j in range(2):
                ax.text(
                    j,
                    i,
                    f"{cm[i, j]:,}\n({100 * cm[i, j] / n:.1f}%)",
                    ha="center",
                    va="center",
                    color="white" if cm[i, j] > top / 2 else "#1d2330",
                    fontsize=11,
                )
        ax.set_xticks([0, 1], labels)
        ax.set_yticks([0, 1], labels, rotation=90, va="center")
        ax.set(xlabel="Predicted (threshold 0.5)", ylabel="Actual", title=f"{name.capitalize()}")
    return _png(fig)


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


def confusion_multiclass_png(y, pred, classes, name: str) -> bytes:
    """The N x N confusion matrix of one model: counts (left) and row-normalised recall (right);
    sized and lettered so 10+ classes stay readable (cell numbers up to 15 classes)."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    cm = confusion_matrix(y, pred, labels=list(classes))
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    side = max(4.6, 0.42 * k + 2.4)
    fig = _new_figure(2 * side + 0.8, side + 0.6)
    axes = fig.subplots(1, 2)
    labels = [_class_label(c) for c in classes]
    font = 10 if k <= 6 else 8 if k <= 10 else 6.5
    for ax, matrix, what, fmt in (
        (axes[0], cm, "counts", "{:,}"),
        (axes[1], norm, "share of the true class", "{:.2f}"),
    ):
        im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=matrix.max() or 1)
        if k <= 15:
            top = matrix.max() or 1
            for i in range(k):
                for j in range(k):
                    ax.text(
                        j,
                        i,
                        fmt.format(matrix[i, j]),
                        ha="center",
                        va="center",
                        fontsize=font,
                        color="white" if matrix[i, j] > top / 2 else "#1d2330",
                    )
        ax.set_xticks(
            range(k), labels, rotation=60 if k > 4 else 0, ha="right" if k > 4 else "center", fontsize=font
        )
        ax.set_yticks(range(k), labels, fontsize=font)
        ax.set(xlabel="Predicted", ylabel="Actual", title=f"{name.capitalize()}: {what}")
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _png(fig)


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
