"""Slice and fairness gates: the model gate per value of a column (a carrier, an airport, a group).

A gate is a dict in the evaluation config's ``slice_gates`` list::

    {"column": "carrier", "metric": "roc_auc", "min": 0.6, "max_gap": 0.08, "min_rows": 300}
    {"column": "origin", "metric": "positive_rate", "min_ratio": 0.8, "min_rows": 300}

* ``metric``: a scikit-learn scorer name or alias valid for the task (the same scorer, hence the
  same averaging, as the overall metrics), or ``"positive_rate"``: the share of rows predicted as
  the positive class (binary) or as the named ``"class"`` (multiclass).
* ``min`` / ``max``: a floor (higher-is-better metrics, rates) / a ceiling (errors, rates) every
  slice with at least ``min_rows`` rows must meet.
* ``max_gap``: the spread between the best and the worst slice may not widen by more than this
  compared with the champion on the same rows (with no champion: the spread itself may not exceed it).
* ``min_ratio``: worst / best slice value (e.g. the "four-fifths rule" on positive-prediction
  rates) must be at least this.
* ``min_rows`` (default :data:`DEFAULT_MIN_ROWS`): smaller slices are listed as "too few rows" and
  not gated.

Each rule becomes a :class:`~mlops_provider.core.evaluation.Check` of kind ``"slice"`` naming the
column, the slice value and its rows, so the verdict, the alert and the registry page say which
slice failed and by how much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from mlops_provider.core import metrics as M
from mlops_provider.core.errors import InvalidParameterError

POSITIVE_RATE = "positive_rate"
DEFAULT_MIN_ROWS = 100
KEYS = ("column", "metric", "min", "max", "max_gap", "min_ratio", "min_rows", "class")
RULES = ("min", "max", "max_gap", "min_ratio")
TOO_FEW_ROWS = "too few rows"


@dataclass(frozen=True)
class SliceGate:
    column: str
    metric: str
    min: float | None = None
    max: float | None = None
    max_gap: float | None = None
    min_ratio: float | None = None
    min_rows: int = DEFAULT_MIN_ROWS
    cls: Any = None  # positive_rate of a multiclass model: the class

    @property
    def higher_is_better(self) -> bool:
        return True if self.metric == POSITIVE_RATE else M.resolve(self.metric).higher_is_better

    @property
    def label(self) -> str:
        cls = f"[{self.cls!r}]" if self.cls is not None else ""
        return f"{self.metric}{cls} by {self.column}"

    def to_dict(self) -> dict[str, Any]:
        out = {"column": self.column, "metric": self.metric, "min_rows": self.min_rows}
        for key in RULES:
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.cls is not None:
            out["class"] = self.cls
        return out


def _err(i: int, key: str, owner: str, expected: str, got: Any) -> InvalidParameterError:
    where = f"slice_gates[{i}]" + (f".{key}" if key else "")
    return InvalidParameterError(
        f"The {where!r} parameter of {owner} must be {expected}. Got {got!r} instead."
    )


def _number(i: int, key: str, value: Any, owner: str, lo: float | None, hi: float | None) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        span = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
        raise _err(i, key, owner, f"a number in {span}", value)
    return float(value)


def _range(metric: str, task: str | None) -> tuple[float | None, float | None]:
    """Where a floor/ceiling on ``metric`` can lie."""
    if metric == POSITIVE_RATE:
        return 0.0, 1.0
    m = M.resolve(metric)
    if not m.higher_is_better:
        return 0.0, None  # errors
    if task == "regression" or m.scorer in ("r2", "explained_variance", "d2_absolute_error_score"):
        return None, 1.0
    return 0.0, 1.0  # classification scores


def normalize_slice_gates(
    gates: Any,
    task: str | None = None,
    owner: str = "EvaluateModelOperator",
    *,
    columns: Any = None,
    classes: Any = None,
) -> list[SliceGate]:
    """``slice_gates`` checked (keys, metric and its fit to ``task``, ranges, ``min_rows``; with
    ``columns`` the column; with ``classes`` a multiclass ``"class"``), as :class:`SliceGate` s.
    ``task`` is ``"binary"``, ``"multiclass"``, ``"regression"``, ``"classification"`` (binary or
    multiclass, not known yet) or None (no fit checked)."""
    if gates in (None, "", [], ()):
        return []
    if not isinstance(gates, (list, tuple)):
        raise InvalidParameterError(
            f"The 'slice_gates' parameter of {owner} must be a list of dicts such as "
            f'[{{"column": "carrier", "metric": "roc_auc", "min": 0.6}}]. Got {gates!r} instead.'
        )
    return [_one(i, gate, task, owner, columns, classes) for i, gate in enumerate(gates)]


def _one(i: int, gate: Any, task: str | None, owner: str, columns: Any, classes: Any) -> SliceGate:
    if not isinstance(gate, dict):
        raise _err(
            i, "", owner, 'a dict such as {"column": "carrier", "metric": "roc_auc", "min": 0.6}', gate
        )
    unknown = sorted(set(map(str, gate)) - set(KEYS))
    if unknown:
        raise _err(i, "", owner, f"a dict with keys among {list(KEYS)}", f"unknown key(s) {unknown}")
    column = gate.get("column")
    if not isinstance(column, str) or not column.strip():
        raise _err(i, "column", owner, "a column name", column)
    if columns is not None and column not in list(columns):
        raise _err(i, "column", owner, f"a column of the evaluation data {list(columns)}", column)
    metric = _metric(i, gate.get("metric"), task, owner)
    cls = _class(i, gate, metric, task, owner, classes)
    lo, hi = _range(metric, task)
    m = None if metric == POSITIVE_RATE else M.resolve(metric)
    values: dict[str, Any] = {}
    for key in ("min", "max"):
        if gate.get(key) is not None:
            if m is not None and (key == "min") != m.higher_is_better:
                other = "max" if key == "min" else "min"
                raise _err(
                    i,
                    key,
                    owner,
                    f"absent: {'higher' if m.higher_is_better else 'lower'} {metric} is "
                    f"better, so its limit is {other!r}",
                    gate[key],
                )
            values[key] = _number(i, key, gate[key], owner, lo, hi)
    if gate.get("max_gap") is not None:
        values["max_gap"] = _number(i, "max_gap", gate["max_gap"], owner, 0, None)
    if gate.get("min_ratio") is not None:
        if m is not None and not m.higher_is_better:
            raise _err(
                i,
                "min_ratio",
                owner,
                f"absent for an error metric ({metric}); use max_gap",
                gate["min_ratio"],
            )
        values["min_ratio"] = _number(i, "min_ratio", gate["min_ratio"], owner, 0, 1)
    if not values:
        raise _err(i, "", owner, f"a dict with at least one rule among {list(RULES)}", gate)
    min_rows = gate.get("min_rows", DEFAULT_MIN_ROWS)
    if isinstance(min_rows, float) and min_rows.is_integer():
        min_rows = int(min_rows)
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise _err(i, "min_rows", owner, "an int >= 1", min_rows)
    return SliceGate(column=column, metric=metric, min_rows=min_rows, cls=cls, **values)


def _metric(i: int, metric: Any, task: str | None, owner: str) -> str:
    if metric == POSITIVE_RATE:
        if task == "regression":
            raise _err(i, "metric", owner, "a regression metric (positive_rate needs a classifier)", metric)
        return metric
    if not isinstance(metric, str):
        raise _err(i, "metric", owner, f"a scikit-learn scorer name or {POSITIVE_RATE!r}", metric)
    resolved = M.resolve(metric, f"slice_gates[{i}].metric", owner)
    if task is not None:
        M.check_fit(resolved, task, f"slice_gates[{i}].metric", owner)
    return resolved.name


def _class(i: int, gate: dict, metric: str, task: str | None, owner: str, classes: Any) -> Any:
    cls = gate.get("class")
    if metric != POSITIVE_RATE:
        if cls is not None:
            raise _err(i, "class", owner, f"absent (only {POSITIVE_RATE!r} takes a class)", cls)
        return None
    if task == "binary" and cls is not None:
        raise _err(i, "class", owner, "absent for a binary model (the rate is of its positive_label)", cls)
    if task == "multiclass":
        if cls is None:
            raise _err(
                i,
                "class",
                owner,
                "the class whose predicted rate is gated (positive_rate of a multiclass "
                "model is the rate of one named class)",
                cls,
            )
        if classes is not None and str(cls) not in {str(c) for c in classes}:
            raise _err(i, "class", owner, f"one of the model's classes {list(classes)}", cls)
    return cls


# --------------------------------------------------------------------------- measuring
def _plain(v: Any) -> Any:
    """A slice value as JSON can hold it."""
    if hasattr(v, "item"):
        v = v.item()
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v if isinstance(v, (str, int, float, bool)) else str(v)


def _value(gate: SliceGate, enc, pred, proba, mask) -> float:
    import numpy as np

    if gate.metric == POSITIVE_RATE:
        p = np.asarray(pred)[mask]
        if enc.task == "binary":
            return float(np.mean(p == 1)) if len(p) else float("nan")
        return float(np.mean(p.astype(str) == str(gate.cls))) if len(p) else float("nan")
    y = np.asarray(enc.y)[mask]
    try:
        return float(
            M.score(
                M.resolve(gate.metric),
                enc.task,
                y,
                np.asarray(pred)[mask],
                None if proba is None else np.asarray(proba)[mask],
                enc.classes,
            )
        )
    except ValueError:
        return float("nan")  # not defined on these rows (e.g. a single class)


def slice_table(gate: SliceGate, values, challenger, champion=None) -> list[dict[str, Any]]:
    """Per-slice ``{"value", "rows", "challenger", "champion", "status"}``, largest slice first.
    ``challenger`` is an :class:`~mlops_provider.core.evaluation.Encoded`; ``champion`` its
    ``(pred, proba)`` aligned to the challenger's classes, or None. ``status`` is ``"gated"``,
    ``"too few rows"`` or ``"undefined"`` (the metric has no value on the slice)."""
    import numpy as np
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True, use_na_sentinel=False)
    counts = np.bincount(codes, minlength=len(uniques))
    rows = []
    for k in np.argsort(-counts, kind="stable"):
        mask = codes == k
        n = int(counts[k])
        ch = _value(gate, challenger, challenger.pred, challenger.proba, mask)
        cm = _value(gate, challenger, champion[0], champion[1], mask) if champion is not None else None
        status = TOO_FEW_ROWS if n < gate.min_rows else "undefined" if ch != ch else "gated"
        rows.append(
            {
                "value": _plain(uniques[k]),
                "rows": n,
                "challenger": None if ch != ch else round(ch, 6),
                "champion": None if cm is None or cm != cm else round(cm, 6),
                "status": status,
            }
        )
    return rows


def _where(gate: SliceGate, row: dict[str, Any]) -> str:
    return f"{gate.column}={row['value']!r} ({row['rows']:,} rows)"


def gate_checks(gate: SliceGate, rows: list[dict[str, Any]], has_champion: bool) -> list[Any]:
    """The gate's rules as :class:`~mlops_provider.core.evaluation.Check` s of kind ``"slice"``."""
    from mlops_provider.core.evaluation import Check

    gated = [r for r in rows if r["status"] == "gated"]
    checks = []
    base = {
        "column": gate.column,
        "gate": gate.to_dict(),
        "too_few_rows": sum(r["status"] == TOO_FEW_ROWS for r in rows),
    }
    if not gated:
        return []  # the table says why: every slice too small or undefined
    worst = (
        min(gated, key=lambda r: r["challenger"])
        if gate.higher_is_better
        else max(gated, key=lambda r: r["challenger"])
    )
    best = (
        max(gated, key=lambda r: r["challenger"])
        if gate.higher_is_better
        else min(gated, key=lambda r: r["challenger"])
    )
    for key, op in (("min", ">="), ("max", "<=")):
        limit = getattr(gate, key)
        if limit is None:
            continue
        bad = [r for r in gated if (r["challenger"] < limit if key == "min" else r["challenger"] > limit)]
        at = (min if key == "min" else max)(gated, key=lambda r: r["challenger"])  # the worst slice
        checks.append(
            Check(
                "slice",
                gate.metric,
                op,
                limit,
                at["challenger"],
                at["champion"],
                round(at["challenger"] - limit, 6),
                not bad,
                slice={
                    **base,
                    "rule": key,
                    "value": at["value"],
                    "rows": at["rows"],
                    "failing": [{k: r[k] for k in ("value", "rows", "challenger")} for r in bad],
                },
            )
        )
    if gate.max_gap is not None:
        gap = round(abs(best["challenger"] - worst["challenger"]), 6)
        both = [r for r in gated if r["champion"] is not None]
        champ_gap = (
            round(max(r["champion"] for r in both) - min(r["champion"] for r in both), 6)
            if has_champion and both
            else None
        )
        limit = round((champ_gap or 0.0) + gate.max_gap, 6) if champ_gap is not None else gate.max_gap
        checks.append(
            Check(
                "slice",
                gate.metric,
                "<=",
                limit,
                gap,
                champ_gap,
                round(gap - champ_gap, 6) if champ_gap is not None else round(gap - gate.max_gap, 6),
                gap <= limit + 1e-12,
                slice={
                    **base,
                    "rule": "max_gap",
                    "value": worst["value"],
                    "rows": worst["rows"],
                    "worst": {k: worst[k] for k in ("value", "rows", "challenger", "champion")},
                    "best": {k: best[k] for k in ("value", "rows", "challenger", "champion")},
                    "max_gap": gate.max_gap,
                },
            )
        )
    if gate.min_ratio is not None:
        lo = min(gated, key=lambda r: r["challenger"])
        hi = max(gated, key=lambda r: r["challenger"])
        ratio = lo["challenger"] / hi["challenger"] if hi["challenger"] > 0 else 1.0  # all zero: equal
        checks.append(
            Check(
                "slice",
                gate.metric,
                ">=",
                gate.min_ratio,
                round(ratio, 6) if ratio == ratio else ratio,
                None,
                round(ratio - gate.min_ratio, 6) if ratio == ratio else None,
                ratio == ratio and ratio >= gate.min_ratio,
                slice={
                    **base,
                    "rule": "min_ratio",
                    "value": lo["value"],
                    "rows": lo["rows"],
                    "worst": {k: lo[k] for k in ("value", "rows", "challenger")},
                    "best": {k: hi[k] for k in ("value", "rows", "challenger")},
                },
            )
        )
    return checks


def evaluate_gates(gates: list[SliceGate], labelled, challenger, champion=None):
    """``(checks, tables)`` of every gate on the labelled rows (``labelled`` a DataFrame whose
    rows match ``challenger``'s arrays)."""
    checks, tables = [], []
    for gate in gates:
        rows = slice_table(gate, labelled[gate.column].to_numpy(), challenger, champion)
        tables.append({**gate.to_dict(), "label": gate.label, "slices": rows})
        checks.extend(gate_checks(gate, rows, champion is not None))
    return checks, tables


def describe(c: Any) -> str:
    """One line about a slice check (a Check or its dict)."""
    get = c.get if isinstance(c, dict) else lambda k, d=None: getattr(c, k, d)
    s = get("slice") or {}
    rule, metric, col = s.get("rule"), get("metric"), s.get("column")
    ok = "ok" if get("passed") else "FAILED"
    f = _f
    if rule in ("min", "max"):
        word = "floor" if rule == "min" else "ceiling"
        champ = f", champion {f(get('champion'))}" if get("champion") is not None else ""
        return (
            f"{metric} on {col}={s.get('value')!r} ({s.get('rows'):,} rows): {f(get('challenger'))}"
            f"{champ} ({word} {get('op')} {f(get('threshold'))}) {ok}"
        )
    if rule == "max_gap":
        w, b = s["worst"], s["best"]
        vs = (
            f", champion gap {f(get('champion'))} (may widen by <= {f(s['max_gap'])})"
            if get("champion") is not None
            else f" (needs <= {f(s['max_gap'])})"
        )
        return (
            f"{metric} gap by {col} {f(get('challenger'))}{vs}: worst {col}={w['value']!r} "
            f"({w['rows']:,} rows) {f(w['challenger'])} vs best {col}={b['value']!r} "
            f"({b['rows']:,} rows) {f(b['challenger'])} {ok}"
        )
    if rule == "min_ratio":
        w, b = s["worst"], s["best"]
        return (
            f"{metric} ratio by {col} {f(get('challenger'))} (needs >= {f(get('threshold'))}): "
            f"lowest {col}={w['value']!r} ({w['rows']:,} rows) {f(w['challenger'])} vs highest "
            f"{col}={b['value']!r} ({b['rows']:,} rows) {f(b['challenger'])} {ok}"
        )
    return f"{metric} by {col}: {s.get('note', '')}"


def _f(v: Any) -> str:
    return "undefined" if v is None or (isinstance(v, float) and v != v) else f"{v:.4f}"


def markdown_table(tables: list[dict[str, Any]]) -> str:
    """The slice tables as Markdown (the approver's view)."""
    out = []
    for t in tables:
        out.append(f"**{t['label']}** (gated from {t['min_rows']} rows)\n")
        out.append(f"| {t['column']} | rows | challenger | champion | status |")
        out.append("|---|---:|---:|---:|---|")
        for r in t["slices"]:
            out.append(
                f"| {r['value']} | {r['rows']:,} | {_f(r['challenger'])} | {_f(r['champion'])} | "
                f"{r['status']} |"
            )
        out.append("")
    return "\n".join(out)


def check_label(c: Any) -> str:
    """What a check is about, for tables and alerts: its metric, and for a slice check the slice
    (``roc_auc on carrier='9E' (1,234 rows)``, ``roc_auc gap by carrier``)."""
    s = c.get("slice") if isinstance(c, dict) else getattr(c, "slice", None)
    metric = str(c.get("metric") if isinstance(c, dict) else getattr(c, "metric", ""))
    if not s:
        return metric
    rule, col = s.get("rule"), s.get("column")
    if rule in ("min", "max"):
        rows = s.get("rows")
        return f"{metric} on {col}={s.get('value')!r}" + (
            f" ({rows:,} rows)" if isinstance(rows, int) else ""
        )
    if rule == "max_gap":
        return f"{metric} gap by {col} (worst {col}={s.get('value')!r}, {s.get('rows'):,} rows)"
    if rule == "min_ratio":
        return f"{metric} ratio by {col} (lowest {col}={s.get('value')!r}, {s.get('rows'):,} rows)"
    return f"{metric} by {col}"
