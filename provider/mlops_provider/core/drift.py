"""Data drift between a reference (the champion's training snapshot) and a current window.

Per feature:

* numeric: PSI over quantile bins fixed from the reference (missing values are a bin of their
  own), and the two-sample Kolmogorov-Smirnov statistic with its asymptotic p-value;
* categorical: PSI over the reference's categories (rare ones pooled, unseen ones a bin of their
  own), and the chi-square test of the 2 x K contingency table (scipy);
* both: the shift in missing rate; categorical: the share of rows with categories never seen in
  the reference.

A feature drifts when its PSI reaches ``psi_threshold`` (an effect size: with a million rows every
p-value is tiny, so p-values are reported, not used to decide, unless ``decide_by="p_value"``), or
its missing rate moves by ``missing_threshold``, or unseen categories reach ``unseen_threshold``.

The reference is summarised once into a :class:`ReferenceProfile` (quantile grid, bin edges and
proportions, category frequencies); comparing a window touches only the window. KS is computed on
a grid of reference quantiles (1,000 by default), which bounds its error by 1/grid.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.errors import InvalidInputError, InvalidParameterError
from mlops_provider.core.modeling import check_columns

EPS = 1e-4
OTHER = "__other__"
UNSEEN = "__unseen__"
MISSING = "__missing__"


@dataclass
class FeatureProfile:
    name: str
    kind: str  # "numeric" | "categorical"
    rows: int
    missing_rate: float
    edges: list[int] = field(default_factory=list)  # grid indices of the PSI bin edges (numeric)
    proportions: list[float] = field(default_factory=list)  # PSI bins (+ missing bin last)
    grid: list[float] = field(default_factory=list)  # reference quantiles for KS (numeric)
    grid_cdf: list[float] = field(default_factory=list)  # reference CDF at the grid points
    categories: dict[str, float] = field(default_factory=dict)  # categorical: share per category


@dataclass
class ReferenceProfile:
    features: dict[str, FeatureProfile]
    rows: int
    source: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "source": self.source,
            "features": {k: asdict(v) for k, v in self.features.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReferenceProfile:
        return cls(
            features={k: FeatureProfile(**v) for k, v in d["features"].items()},
            rows=d["rows"],
            source=d.get("source", {}),
        )


@dataclass
class FeatureDrift:
    feature: str
    kind: str
    test: str  # "ks" | "chi2"
    statistic: float
    p_value: float
    psi: float
    psi_threshold: float
    missing_rate_reference: float
    missing_rate_current: float
    unseen_share: float | None
    drifted: bool
    reasons: list[str]

    def describe(self) -> str:
        extra = f", unseen {self.unseen_share:.1%}" if self.unseen_share else ""
        return (
            f"{self.feature}: PSI {self.psi:.3f} (threshold {self.psi_threshold}), {self.test} "
            f"{self.statistic:.3f} "
            f"p={self.p_value:.2g}, missing {self.missing_rate_reference:.1%} -> "
            f"{self.missing_rate_current:.1%}{extra}"
        )


@dataclass
class DriftReport:
    reference: dict[str, Any]
    current: dict[str, Any]
    features: list[FeatureDrift]
    decide_by: str
    created_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    )
    report_uri: str | None = None

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def summary(self) -> str:
        d = [f for f in self.features if f.drifted]
        head = f"{len(d)} of {len(self.features)} features drifted"
        return head + (": " + "; ".join(f.describe() for f in d) if d else "")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["drifted_features"] = self.drifted_features
        out["n_drifted"] = len(self.drifted_features)
        out["summary"] = self.summary()
        out["scores"] = {f.feature: round(f.psi, 6) for f in self.features}
        return out


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def _numeric_array(series):
    """(float64 values with NaN for missing, missing rate, number of non-missing values)."""
    import numpy as np

    values = series.to_numpy(dtype="float64", na_value=np.nan)
    n_missing = int(np.count_nonzero(np.isnan(values)))
    return values, (n_missing / len(values) if len(values) else 0.0), len(values) - n_missing


def _category_counts(series) -> tuple[list[tuple[str, int]], float]:
    """Counts per category (as ``str``), most frequent first, and the missing rate.

    Counted on the column's own dtype (Arrow strings, categoricals and objects alike) and only
    then turned into ``str`` keys: far cheaper than converting a million values to Python strings.
    Values with the same ``str`` form are pooled, as ``astype(str)`` would.
    """
    n = len(series)
    missing = float(series.isna().sum()) / n if n else 0.0
    vc = series.value_counts(dropna=True, sort=False)
    vc = vc[vc.to_numpy() > 0]  # a categorical dtype lists unused categories too
    pooled: dict[str, int] = {}
    # via object, so keys are str() of the same Python objects the old astype(object).astype(str) saw
    for k, v in zip(vc.index.astype(object).astype(str), vc.to_numpy().tolist(), strict=True):
        pooled[k] = pooled.get(k, 0) + int(v)
    # most frequent first; ties keep their order of first appearance (value_counts(sort=False) order)
    return sorted(pooled.items(), key=lambda kv: -kv[1]), missing


def _sorted_quantiles(xs, grid: int):
    """``np.quantile(xs, np.linspace(0, 1, grid + 1), method="linear")`` for an already sorted ``xs``.

    Same arithmetic as numpy's (virtual index ``(n - 1) * q``, its two-sided lerp), hence the same
    bits, without numpy re-partitioning the sorted million values around 2,000 pivots.
    """
    import numpy as np

    n = len(xs)
    q = np.linspace(0, 1, grid + 1)
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    gamma = virtual - prev
    lo = prev.astype(np.intp)
    hi = lo + 1
    top = virtual >= n - 1
    lo[top] = n - 1
    hi[top] = n - 1
    a, b = xs[lo], xs[hi]
    diff = b - a
    out = a + diff * gamma
    np.subtract(b, diff * (1 - gamma), out=out, where=gamma >= 0.5)
    return out


_TABLE_MIN_ROWS = 20_000
_TABLE_MIN_GRID = 16
_TABLE_MAX_STEPS = 4


def _table_plan(u):
    """A monotone map from values to ``cells`` table cells (linear, or on logs for a positive grid)
    under which at most ``steps`` points of the sorted unique grid ``u`` share a cell; None if none fits."""
    import numpy as np

    k = len(u)
    if k < _TABLE_MIN_GRID or not np.isfinite(u).all():
        return None
    best = None
    with np.errstate(all="ignore"):
        for use_log in (False, True) if u[0] > 0 else (False,):
            v = np.log(u) if use_log else u
            for cells in (1 << 12, 1 << 14, 1 << 16):
                for i in (0, 1, 3, 10):  # span the grid, or all but its extreme points (outliers)
                    lo, hi = float(v[i]), float(v[k - 1 - i])
                    scale = cells / (hi - lo)
                    if not (np.isfinite(scale) and scale > 0):
                        continue
                    cu = np.clip((v - lo) * scale, 0, cells - 1).astype(np.intp)
                    steps = int(np.bincount(cu, minlength=cells).max())
                    if best is None or steps < best[0]:
                        best = (steps, use_log, cells, lo, scale, cu)
                if best is not None and best[0] <= 1:
                    return best
    return best if best is not None and best[0] <= _TABLE_MAX_STEPS else None


def _grid_bincount(u, x):
    """``np.bincount(np.searchsorted(u, x, side="right"), minlength=len(u) + 1)`` for a sorted unique
    grid ``u``; NaN counts in the last bin. Exact, and several times faster on a large ``x``.

    A binary search over 1,000 grid points costs ~10 unpredictable branches per value. Instead each
    value goes through a weakly monotone map ``f`` (clip((x - lo) * scale), or the same on logs) to
    one of up to 65,536 table cells; the table holds how many grid points lie in earlier cells
    (``start``). Monotonicity makes that exact: a grid point in an earlier cell is < x, one in a later
    cell is > x, so ``#grid <= x = start[f(x)] + #{grid points of x's cell that are <= x}``, and the
    plan keeps those to <= ``_TABLE_MAX_STEPS`` per cell (points past the cell are > x, so the
    comparisons need no mask). Grids that no such map spreads out keep the binary search.
    """
    import numpy as np

    k = len(u)
    plan = _table_plan(u) if len(x) >= _TABLE_MIN_ROWS else None
    if plan is None:
        return np.bincount(np.searchsorted(u, x, side="right"), minlength=k + 1)
    steps, use_log, cells, lo, scale, cu = plan
    start = np.searchsorted(cu, np.arange(cells), side="left")
    with np.errstate(all="ignore"):
        if use_log:  # max(x, u[0] / 2) keeps the map monotone (and defined) below the grid
            t = np.maximum(x, u[0] * 0.5)
            np.log(t, out=t)
            t -= lo
        else:
            t = x - lo
        t *= scale
        np.clip(t, 0, cells - 1, out=t)
    nan = np.isnan(t)
    has_nan = bool(nan.any())
    if has_nan:
        t[nan] = 0
    pos = start[t.astype(np.intp)]
    del t
    upad = np.concatenate([u, np.full(steps, np.inf)])
    idx = pos + (upad[pos] <= x)
    for _ in range(1, steps):
        pos += 1
        idx += upad[pos] <= x
    if has_nan:
        idx[nan] = k
    return np.bincount(idx, minlength=k + 1)


def build_profile(
    df,
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    *,
    bins: int = 10,
    grid: int = 1000,
    max_categories: int = 50,
    source: dict[str, Any] | None = None,
) -> ReferenceProfile:
    """Summarise the reference once: everything :func:`compare` needs, JSON-able."""
    import numpy as np

    if len(df) == 0:
        raise InvalidInputError("The drift reference has 0 rows.")
    features = list(features or df.columns)
    check_columns(list(df.columns), features, "feature", "The drift reference")
    categorical = set(categorical or [])
    out = {}

    def one(name: str) -> FeatureProfile:
        s = df[name]
        if name not in categorical and _is_numeric(s):
            values, missing, n_valid = _numeric_array(s)
            if n_valid == 0:
                return FeatureProfile(name, "numeric", len(s), missing, proportions=[1.0])
            values = np.sort(values)[:n_valid]  # one sort; NaN sorts last
            q = _sorted_quantiles(values, grid)
            lt = np.searchsorted(values, q, side="left")  # reference rows < q[i]
            edges = _edge_positions(grid, bins)
            return FeatureProfile(
                name,
                "numeric",
                len(s),
                missing,
                edges=edges,
                proportions=_bin_props(lt, n_valid, missing, edges),
                grid=q.tolist(),
                grid_cdf=(lt / n_valid).tolist(),
            )
        shares, missing = _category_counts(s)
        total = len(s)
        categories = {k: float(v) / total for k, v in shares[:max_categories]}
        rest = float(sum(v for _, v in shares[max_categories:])) / total
        if rest:
            categories[OTHER] = rest
        return FeatureProfile(name, "categorical", len(s), missing, categories=categories)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for fp in pool.map(one, features):
            out[fp.name] = fp
    return ReferenceProfile(features=out, rows=len(df), source=dict(source or {}))


def _edge_positions(grid: int, bins: int) -> list[int]:
    """Grid indices of the PSI bin edges (deciles for bins=10): PSI bins are unions of grid cells."""
    return sorted({round(j * grid / bins) for j in range(1, bins)})


def _bin_props(lt, n: int, missing: float, positions: list[int]) -> list[float]:
    """Bin shares from ``lt[i]`` = rows < grid[i]; the missing share is the last bin."""
    cuts = [0] + [int(lt[p]) for p in positions] + [n]
    counts = [b - a for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return [c * (1 - missing) / n for c in counts] + [missing]


def _psi(ref, cur) -> float:
    import numpy as np

    r = np.clip(np.asarray(ref, dtype="float64"), EPS, None)
    c = np.clip(np.asarray(cur, dtype="float64"), EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _ks_pvalue(d: float, n: int, m: int) -> float:
    from scipy.stats import kstwo

    if n == 0 or m == 0:
        return 1.0
    en = n * m / (n + m)
    return float(kstwo.sf(d, max(1, round(en))))


def compare(
    profile: ReferenceProfile,
    df,
    *,
    psi_threshold: float | dict[str, float] = 0.2,
    missing_threshold: float = 0.1,
    unseen_threshold: float = 0.05,
    p_value_threshold: float = 0.01,
    decide_by: str = "psi",
    reference_info: dict[str, Any] | None = None,
    current_info: dict[str, Any] | None = None,
) -> DriftReport:
    """Compare a window with the reference profile; never raises on drift, only on bad input.

    ``psi_threshold`` is one number, or per feature: ``{"temp": 1.0, "default": 0.2}`` (weather moves
    from month to month far more than carriers or routes do).
    """
    import numpy as np
    from scipy.stats import chi2_contingency

    thresholds = dict(psi_threshold) if isinstance(psi_threshold, dict) else {"default": psi_threshold}
    thresholds.setdefault("default", 0.2)
    unknown = sorted(set(thresholds) - set(profile.features) - {"default"})
    if unknown:
        raise InvalidParameterError(
            f"The 'psi_threshold' parameter names {unknown}, which are not features of the reference "
            f"{sorted(profile.features)}."
        )
    checks = [(f"psi_threshold[{k!r}]", v) for k, v in thresholds.items()]
    for name, value in (
        *checks,
        ("missing_threshold", missing_threshold),
        ("unseen_threshold", unseen_threshold),
        ("p_value_threshold", p_value_threshold),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value:
            raise InvalidParameterError(
                f"The {name!r} parameter must be a number > 0. Got {value!r} instead."
            )
    if decide_by not in ("psi", "p_value"):
        raise InvalidParameterError(
            f"The 'decide_by' parameter must be 'psi' or 'p_value'. Got {decide_by!r} instead."
        )
    if len(df) == 0:
        raise InvalidInputError("The drift window has 0 rows; nothing to compare.")
    check_columns(list(df.columns), list(profile.features), "feature", "The drift window")

    def one(fp: FeatureProfile) -> FeatureDrift:
        s = df[fp.name]
        reasons = []
        unseen_share = None
        if fp.kind == "numeric":
            if not _is_numeric(s):
                raise InvalidInputError(
                    f"The drift window's column {fp.name!r} must be numeric like the reference. Got dtype "
                    f"{s.dtype}."
                )
            values, missing, n_valid = _numeric_array(s)
            if n_valid and fp.grid:
                g = np.asarray(fp.grid, dtype="float64")
                # one pass: rows < g[i] for every grid point, on the distinct grid values (the grid
                # repeats values where the reference has ties; still exact), NaN left out
                u, inv = np.unique(g, return_inverse=True)
                lt = _grid_bincount(u, values).cumsum()[: len(u)][inv]
                stat = float(np.max(np.abs(np.asarray(fp.grid_cdf) - lt / n_valid)))
                n_ref = int(round(fp.rows * (1 - fp.missing_rate)))
                p = _ks_pvalue(stat, n_ref, n_valid)
                props = _bin_props(lt, n_valid, missing, fp.edges)
            else:
                stat, p = 0.0, 1.0
                props = [0.0] * (len(fp.proportions) - 1) + [missing] if fp.grid else [1.0]
            psi = _psi(fp.proportions, props)
            test = "ks"
        else:
            pairs, missing = _category_counts(s)
            counts = dict(pairs)
            known = [c for c in fp.categories if c != OTHER]
            total = len(s)
            cur = {c: float(counts.get(c, 0)) / total for c in known}
            rest_count = sum(v for c, v in pairs if c not in fp.categories)
            # categories pooled as OTHER in the reference count as seen only if they existed there
            unseen = float(rest_count) / total if OTHER not in fp.categories else 0.0
            other = float(rest_count) / total if OTHER in fp.categories else 0.0
            ref_props = [fp.categories[c] for c in known] + [
                fp.categories.get(OTHER, 0.0),
                0.0,
                fp.missing_rate,
            ]
            cur_props = [cur[c] for c in known] + [other, unseen, missing]
            psi = _psi(ref_props, cur_props)
            table = np.array([[p * fp.rows for p in ref_props], [p * total for p in cur_props]])
            table = table[:, table.sum(axis=0) > 0]
            if table.shape[1] > 1:
                chi = chi2_contingency(table, correction=False)
                stat, p = float(chi.statistic), float(chi.pvalue)
            else:
                stat, p = 0.0, 1.0
            unseen_share = unseen
            test = "chi2"
            if unseen >= unseen_threshold:
                reasons.append(f"unseen categories {unseen:.1%} >= {unseen_threshold:.1%}")
        limit = float(thresholds.get(fp.name, thresholds["default"]))
        if decide_by == "psi" and psi >= limit:
            reasons.insert(0, f"PSI {psi:.3f} >= {limit}")
        if decide_by == "p_value" and p < p_value_threshold:
            reasons.insert(0, f"{test} p-value {p:.2g} < {p_value_threshold}")
        if abs(missing - fp.missing_rate) >= missing_threshold:
            reasons.append(f"missing rate {fp.missing_rate:.1%} -> {missing:.1%}")
        return FeatureDrift(
            feature=fp.name,
            kind=fp.kind,
            test=test,
            statistic=round(stat, 6),
            p_value=float(p),
            psi=round(psi, 6),
            psi_threshold=limit,
            missing_rate_reference=round(fp.missing_rate, 6),
            missing_rate_current=round(missing, 6),
            unseen_share=None if unseen_share is None else round(unseen_share, 6),
            drifted=bool(reasons),
            reasons=reasons,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(one, profile.features.values()))
    return DriftReport(
        reference={"rows": profile.rows, **(reference_info or profile.source)},
        current={"rows": len(df), **(current_info or {})},
        features=results,
        decide_by=decide_by,
    )


@dataclass
class RetrainPolicy:
    """Retrain when at least ``min_drifted_features`` drift, in each of the last ``persistence`` windows."""

    min_drifted_features: int = 1
    persistence: int = 1

    def __post_init__(self):
        for name in ("min_drifted_features", "persistence"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidParameterError(
                    f"The {name!r} parameter of RetrainPolicy must be an int >= 1. Got {v!r} instead."
                )

    def decide(self, history: list[dict[str, Any]]) -> tuple[bool, str]:
        """``history``: drift reports (``to_dict()``) oldest first, the current window last."""
        recent = history[-self.persistence :]
        if len(recent) < self.persistence:
            return False, f"drift must persist for {self.persistence} windows; only {len(recent)} recorded"
        counts = [r["n_drifted"] for r in recent]
        if all(c >= self.min_drifted_features for c in counts):
            return True, (
                f"{counts[-1]} feature(s) drifted ({', '.join(recent[-1]['drifted_features'])}); "
                f">= {self.min_drifted_features} in each of the last {self.persistence} window(s)"
            )
        return False, (
            f"drifted features per window {counts}: fewer than {self.min_drifted_features} in at least one "
            f"of the last {self.persistence} window(s)"
        )
