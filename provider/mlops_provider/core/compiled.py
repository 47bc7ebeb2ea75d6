"""Compiled scoring of tree ensembles: the preprocessing stays in scikit-learn, the trees run as C
compiled by Treelite + TL2cgen (the ``compiled`` extra, and a C compiler on the worker).

:func:`prepare` decides, once per scoring run, whether a model is scored compiled:

* ``mode="off"``: never. ``"require"``: always, or the run fails with :class:`CompiledScoringError`.
  ``"auto"`` (the default): when the extra is installed, the model is a supported boosted ensemble
  (not a forest: RandomForest/ExtraTrees compile for minutes into code no faster than
  scikit-learn's), the input has at least :data:`AUTO_MIN_ROWS` rows (or its library is already
  compiled) and the ensemble has at most :data:`AUTO_MAX_NODES` nodes; otherwise scikit-learn
  scores, with a log line saying why.
* Supported: a fitted ``HistGradientBoosting{Classifier,Regressor}`` (missing values, native
  categorical features), ``RandomForest*`` / ``ExtraTrees*`` (single output) and
  ``GradientBoosting*`` (default or ``"zero"`` init), alone or as the last step of a ``Pipeline``.
  Classes are matched by exact name, never by subclass.
* Compiled once per model and runtime: the library lives in a local cache directory
  (:func:`cache_dir`) under a key made of the model's sha256, the versions of Treelite, TL2cgen,
  scikit-learn, numpy, Python, the platform and the C compiler (:func:`cache_key`), so another model
  or another library version never reuses it. A shared library is code: the cache must be a private
  directory (owned by this user, not writable by group or others) outside the artifact root, and is
  never read from or written to the artifact store. A library is published by atomic rename under
  an exclusive lock and its sha256 checked against its sidecar before it is loaded.
* Checked before use: on a sample of the input (plus rows with every feature missing and with
  unseen categories) the compiled model must give the scikit-learn model's probabilities within
  :data:`TOLERANCE` (values for a regressor, relative to their size) and exactly its labels.
* Labels stay exact on every row: a row whose compiled probabilities are within :data:`TOLERANCE`
  of a decision boundary (binary: 0.5; multiclass: a tie for the top class) is re-scored by
  scikit-learn (counted in ``tie_rows``).

Numerics (each verified by the check): trees with a ``tree_`` (forests, GradientBoosting) compare
``float32(x)`` with their thresholds, so the input is rounded to float32 first; HistGradientBoosting
bins raw float64 values, so it is not. The library returns raw margins and the estimator's own loss
turns them into probabilities (or values), as scikit-learn does.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import platform
import shutil
import stat
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_provider.core import compiled_boosters as boosters
from mlops_provider.core.errors import MlopsError

log = logging.getLogger(__name__)

MODES = ("auto", "off", "require")
#: ``auto`` compiles for inputs of at least this many rows (a compile takes seconds).
AUTO_MIN_ROWS = 100_000
#: ``auto`` leaves larger ensembles to scikit-learn (measured: a 300k-node forest compiled for 13 min
#: into a library 0.36x as fast as scikit-learn).
AUTO_MAX_NODES = 60_000
#: Rows of the input the compiled model is checked on before it scores.
CHECK_ROWS = 10_000
#: Largest accepted |compiled - scikit-learn| probability (for values: times max(1, |value|)).
TOLERANCE = 1e-9
FORMAT_VERSION = "mlops-compiled-1"  # bump when the generated code or its use changes
_CACHE_ENV = "MLOPS_COMPILED_CACHE"
_HEX = frozenset("0123456789abcdef")
_CHUNK_ROWS = 65_536
_HGB = ("HistGradientBoostingClassifier", "HistGradientBoostingRegressor")
_FOREST = ("RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor")
_GB = ("GradientBoostingClassifier", "GradientBoostingRegressor")
_BOOSTERS = boosters.LGB + boosters.XGB
_HGB_REG_LOSSES = ("squared_error", "absolute_error", "quantile", "poisson", "gamma")


class CompiledScoringError(MlopsError):
    """``compiled="require"`` and the model cannot be scored compiled (unsupported, the extra or a
    C compiler missing, the compile failed, or its predictions differ from scikit-learn's)."""


class _NotCompiled(Exception):
    """Why a model is scored by scikit-learn (internal); ``expected`` reasons are logged as info."""

    def __init__(self, message: str, *, expected: bool = False):
        super().__init__(message)
        self.expected = expected


@dataclass
class Engine:
    """How a scoring run predicts: recorded in its result and manifest."""

    engine: str  # "tl2cgen" or "scikit-learn"
    mode: str
    reason: str | None = None  # why scikit-learn scores, when compiling was possible in principle
    estimator: str | None = None
    nodes: int | None = None
    cache_key: str | None = None
    cache_hit: bool | None = None
    compile_seconds: float | None = None
    check_rows: int | None = None
    max_abs_diff: float | None = None
    tie_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


# --------------------------------------------------------------------------- support
def _family(estimator: Any) -> str | None:
    cls = type(estimator)
    name = cls.__name__
    if name in _HGB + _FOREST + _GB and cls.__module__.startswith("sklearn.ensemble."):
        import sklearn.ensemble

        if getattr(sklearn.ensemble, name, None) is cls:  # the class itself, not a subclass
            return name
    if cls.__module__.startswith(("lightgbm.", "xgboost.")):
        return boosters.family(estimator)
    return None


def split_pipeline(model: Any) -> tuple[Any, Any]:
    """(the preprocessing, or None; the final estimator) of a model or Pipeline."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline):
        return (model[:-1] if len(model.steps) > 1 else None), model.steps[-1][1]
    return None, model


def unsupported_reason(estimator: Any) -> str | None:
    """None if ``estimator`` can be compiled, else why not."""
    import numpy as np

    fam = _family(estimator)
    if fam is None:
        return (
            f"{type(estimator).__name__} is not a supported tree ensemble (HistGradientBoosting, "
            "RandomForest, ExtraTrees, GradientBoosting, LightGBM, XGBoost)"
        )
    if fam in _BOOSTERS:
        return boosters.unsupported_reason(estimator)
    if fam in _HGB:
        if not hasattr(estimator, "_predictors"):
            return f"{fam} is not fitted"
        if fam == "HistGradientBoostingRegressor" and estimator.loss not in _HGB_REG_LOSSES:
            return f"{fam} with loss {estimator.loss!r}"
        pre = getattr(estimator, "_preprocessor", None)
        if pre is not None:
            for cats in pre.named_transformers_["encoder"].categories_:
                if cats.dtype.kind not in "iuf":
                    return f"{fam} fitted on string categories"
                finite = cats[~np.isnan(cats)] if cats.dtype.kind == "f" else cats
                if np.any(finite != np.floor(finite)):
                    return f"{fam} fitted on non-integer categories"
        return None
    if not hasattr(estimator, "estimators_"):
        return f"{fam} is not fitted"
    if getattr(estimator, "n_outputs_", 1) != 1:
        return f"multi-output {fam}"
    if fam in _GB:
        init = getattr(estimator, "init_", None)
        if not (
            (isinstance(init, str) and init == "zero")
            or type(init).__name__ in ("DummyClassifier", "DummyRegressor")
        ):
            return f"{fam} with a custom init estimator"
        if type(init).__name__ == "DummyClassifier" and init.strategy != "prior":
            return f"{fam} with a DummyClassifier init other than 'prior'"
    return None


def node_count(estimator: Any) -> int:
    """Nodes over every tree of a supported ensemble."""
    fam = _family(estimator)
    if fam in _BOOSTERS:
        return boosters.node_count(estimator)
    if fam in _HGB:
        return int(sum(len(p.nodes) for it in estimator._predictors for p in it))
    trees = estimator.estimators_
    flat = trees.ravel() if hasattr(trees, "ravel") else trees
    return int(sum(t.tree_.node_count for t in flat))


# --------------------------------------------------------------------------- cache
@functools.lru_cache(maxsize=1)
def _compiler() -> tuple[str | None, str]:
    """(path of gcc, its version) or (None, "")."""
    cc = shutil.which("gcc")
    if cc is None:
        return None, ""
    try:
        out = subprocess.run(
            [cc, "-dumpfullversion"], capture_output=True, text=True, timeout=30, check=False
        )
        return cc, out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return cc, "unknown"


def runtime_versions() -> dict[str, str]:
    """Everything that can change the generated library or its numerics."""
    import numpy
    import sklearn
    import tl2cgen
    import treelite

    return {
        "format": FORMAT_VERSION,
        "treelite": treelite.__version__,
        "tl2cgen": tl2cgen.__version__,
        "sklearn": sklearn.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "machine": platform.machine(),
        "system": platform.system(),
        "gcc": _compiler()[1],
        **_booster_versions(),
    }


def _booster_versions() -> dict[str, str]:
    """LightGBM's and XGBoost's versions where installed (their import code is theirs)."""
    from importlib import metadata

    out = {}
    for dist in ("lightgbm", "xgboost", "xgboost-cpu"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def cache_key(model_sha256: str, versions: dict[str, str] | None = None) -> str:
    """The cache key of a model (its file's sha256) under the current (or given) runtime versions."""
    if not (isinstance(model_sha256, str) and len(model_sha256) == 64 and set(model_sha256) <= _HEX):
        raise CompiledScoringError(
            f"The 'model_sha256' must be the 64 hex digits of the model file's sha256. Got {model_sha256!r}."
        )
    payload = json.dumps({"model_sha256": model_sha256, **(versions or runtime_versions())}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def cache_dir(store: Any = None, *, create: bool = True) -> Path:
    """The private local directory of compiled libraries: ``$MLOPS_COMPILED_CACHE``, else
    ``$XDG_CACHE_HOME/mlops-provider/compiled`` (``~/.cache/...``); created 0700 (unless ``create``
    is False: then only its path, checked not to be inside the artifact root).

    :raises CompiledScoringError: if it is not a directory owned by this user with no access for
        group or others (0700), if an ancestor others may write could swap it, or if it lies inside
        ``store``'s (local) artifact root."""
    env = os.environ.get(_CACHE_ENV, "").strip()
    if env:
        path = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        path = Path(base) / "mlops-provider" / "compiled"
    if not path.is_absolute():
        raise CompiledScoringError(f"${_CACHE_ENV} must be an absolute path. Got {env!r} instead.")
    path = path.resolve()
    if store is not None and getattr(store, "is_local", False):
        root = Path(store.root_path).resolve()
        if _inside(path, root):
            raise CompiledScoringError(
                f"The compiled-library cache {path} is inside the artifact root {store.root}: anyone who "
                f"can write the store could plant code there. Set ${_CACHE_ENV} to a private local directory."
            )
    if not create:
        return path
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError as err:
        raise CompiledScoringError(f"The compiled-library cache {path} cannot be created: {err}") from err
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise CompiledScoringError(
            f"The compiled-library cache {path} must be a directory owned by uid {os.getuid()} with no "
            f"access for group or others (chmod 700). Got uid {st.st_uid}, mode {oct(st.st_mode & 0o777)} "
            "instead."
        )
    for parent in path.parents:  # none of them may let another user swap the cache for theirs
        pst = parent.stat()
        shared = pst.st_mode & 0o022 and not pst.st_mode & stat.S_ISVTX
        if pst.st_uid not in (0, os.getuid()) or shared:
            raise CompiledScoringError(
                f"The compiled-library cache {path} lies under {parent} (uid {pst.st_uid}, mode "
                f"{oct(pst.st_mode & 0o7777)}), which another user could use to replace it. Set "
                f"${_CACHE_ENV} to a directory whose parents only you or root can write."
            )
    return path


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _private_file(path: Path) -> bool:
    """A regular file (not a symlink) of this user that group and others cannot write."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _cached(lib: Path, meta_path: Path, expected: dict[str, Any]) -> bool:
    if not (_private_file(lib) and _private_file(meta_path)):
        return False
    try:
        meta = json.loads(meta_path.read_text())
        sha = meta.pop("lib_sha256")
    except (OSError, ValueError, KeyError, AttributeError):
        return False
    return meta == expected and _sha256_file(lib) == sha


def _sweep(folder: Path, older_than: float = 86_400.0) -> None:
    """Remove temporaries a killed compile left behind."""
    now = time.time()
    for p in folder.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - p.stat().st_mtime > older_than:
                p.unlink()


def _build(
    estimator: Any, folder: Path, key: str, lib: Path, meta_path: Path, meta: dict[str, Any], threads: int = 1
) -> None:
    import treelite

    if _family(estimator) in _BOOSTERS:
        tl_model = boosters.import_model(estimator)
    else:
        tl_model = treelite.sklearn.import_model(estimator)
    # about one translation unit per 25 trees: gcc's time grows faster than linearly with a unit's size
    units = max(2, min(64, tl_model.num_tree // 25))
    _sweep(folder)
    tmp_lib = folder / f".tmp-{os.urandom(6).hex()}-{key}.so"
    tmp_meta = folder / f".tmp-{os.urandom(6).hex()}-{key}.json"
    try:
        boosters.export_lib(tl_model, str(tmp_lib), units=units, nthread=max(1, threads))
        os.chmod(tmp_lib, 0o700)
        fd = os.open(tmp_meta, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps({**meta, "lib_sha256": _sha256_file(tmp_lib)}, sort_keys=True))
        # a new inode each time: a process that loaded the previous file keeps its mapping intact
        os.replace(tmp_lib, lib)
        os.replace(tmp_meta, meta_path)
    finally:
        for p in (tmp_lib, tmp_meta):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def compile_library(estimator: Any, folder: Path, key: str, threads: int = 1) -> tuple[Path, bool, float]:
    """(the library of ``estimator`` under ``key`` in ``folder``, whether it was cached, seconds);
    ``threads`` compiler processes at most."""
    fam = _family(estimator)
    lib, meta_path = folder / f"{key}.so", folder / f"{key}.json"
    expected = {
        "key": key,
        "estimator": fam,
        "n_features": int(estimator.n_features_in_),
        "n_classes": len(getattr(estimator, "classes_", [])) or None,
    }
    t0 = time.perf_counter()
    fd = os.open(folder / f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "r+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one compile per key at a time, across processes
        try:
            hit = _cached(lib, meta_path, expected)
            if not hit:
                _build(estimator, folder, key, lib, meta_path, expected, threads)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return lib, hit, time.perf_counter() - t0


# --------------------------------------------------------------------------- the compiled model
class CompiledModel:
    """Stands in for the scikit-learn model in :func:`mlops_provider.core.modeling.predict`:
    ``classes_``, ``predict_proba`` and ``predict`` with the same results (see the module docstring).
    Each thread scoring with it gets its own TL2cgen predictor (they are not thread-safe)."""

    def __init__(self, model: Any, library: Path, *, threads: int = 1):
        import numpy as np

        self.model = model
        self.pre, self.estimator = split_pipeline(model)
        est = self.estimator
        self.family = _family(est)
        self.library = str(library)
        self.threads = max(1, int(threads))
        self.classes_ = getattr(est, "classes_", None)
        self.is_classifier = self.classes_ is not None
        self.float32 = self.family in _FOREST + _GB  # tree_-based estimators compare float32(x)
        self.booster = self.family in _BOOSTERS
        # the library's output: raw margins, except forests' averaged leaf values and XGBoost's link
        self.margin = boosters.margin_output(est) if self.booster else self.family not in _FOREST
        self.loss = getattr(est, "_loss", None) if self.family in _HGB + _GB else None
        self.lgb_categorical = boosters.categorical_columns(est) if self.booster else []
        self.objective = boosters.objective(est) if self.booster else None
        self.known_categories: dict[int, Any] = {}
        pre = getattr(est, "_preprocessor", None)
        if self.family in _HGB and pre is not None:
            cols = np.flatnonzero(est.is_categorical_)
            cats = pre.named_transformers_["encoder"].categories_
            self.known_categories = {
                int(c): np.asarray(k, dtype=np.float64) for c, k in zip(cols, cats, strict=True)
            }
        self._local = threading.local()
        self._ties = 0
        self._ties_lock = threading.Lock()  # also serialises the (rare) re-scoring by the model
        self._check_shape(self._predictor())

    def _check_shape(self, pr: Any) -> None:
        est = self.estimator
        n_out = int(pr.num_class[0]) if len(pr.num_class) else 1
        k = len(self.classes_) if self.is_classifier else 1
        expected_out = 1 if (k == 2 and self.family not in _FOREST) else k
        if pr.num_feature != est.n_features_in_ or pr.num_target != 1 or n_out != expected_out:
            raise _NotCompiled(
                f"the compiled library has {pr.num_feature} features / {n_out} outputs, the model "
                f"{est.n_features_in_} / {expected_out}"
            )

    def _predictor(self, threads: int | None = None) -> Any:
        """The calling thread's predictor (created with ``threads``, default :attr:`threads`)."""
        pr = getattr(self._local, "predictor", None)
        if pr is None:
            import tl2cgen

            n = max(1, int(threads or self.threads))
            pr = self._local.predictor = tl2cgen.Predictor(self.library, nthread=n)
        return pr

    @contextlib.contextmanager
    def thread_budget(self, threads: int):
        """Within this block, the calling thread predicts with its own predictor of ``threads`` threads."""
        self._local.predictor = None
        self._predictor(threads)
        try:
            yield self
        finally:
            self._local.predictor = None

    @property
    def tie_rows(self) -> int:
        return self._ties

    # ------------------------------------------------------------------ raw outputs
    def _transform(self, X: Any) -> Any:
        import numpy as np

        Xt = self.pre.transform(X) if self.pre is not None else X
        if hasattr(Xt, "toarray"):  # sparse: the library reads absent entries as missing, scikit-learn as 0
            Xt = Xt.toarray()
        return np.asarray(Xt, dtype=np.float64)

    def _raw(self, Xt: Any) -> Any:
        import numpy as np
        import tl2cgen

        pr = self._predictor()
        est = self.estimator
        n = Xt.shape[0]
        out = None
        for s in range(0, max(n, 1), _CHUNK_ROWS):
            xb = Xt[s : s + _CHUNK_ROWS]
            if self.float32:
                x32 = xb.astype(np.float32)
                if np.isinf(x32).any() and (np.isinf(x32) & np.isfinite(xb)).any():
                    raise ValueError(  # what scikit-learn's trees raise on the same rows
                        "Input X contains infinity or a value too large for dtype('float32')."
                    )
                xb = x32.astype(np.float64)
            elif self.lgb_categorical:
                xb = boosters.fix_categories(
                    est, np.array(xb, dtype=np.float64, copy=True), self.lgb_categorical
                )
            elif self.known_categories:
                # scikit-learn treats unseen, negative and non-integer categories as missing
                xb = np.array(xb, dtype=np.float64, copy=True)
                for col, known in self.known_categories.items():
                    xb[~np.isin(xb[:, col], known), col] = np.nan
            xb = np.ascontiguousarray(xb, dtype=np.float64)
            r = pr.predict(tl2cgen.DMatrix(xb), pred_margin=self.margin)
            r = np.asarray(r, dtype=np.float64).reshape(xb.shape[0], -1)
            if out is None:
                out = np.empty((n, r.shape[1]), dtype=np.float64)
            out[s : s + r.shape[0]] = r
        return out if out is not None else np.empty((0, 1))

    def _proba(self, raw: Any) -> Any:
        import numpy as np

        if self.booster:
            return boosters.proba(self.estimator, raw, self.objective)
        if not self.margin:
            return raw  # forests: the mean of the trees' class fractions
        arg = np.ascontiguousarray(raw[:, 0] if raw.shape[1] == 1 else raw)
        return self.loss.predict_proba(arg)

    # ------------------------------------------------------------------ the scikit-learn surface
    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        if not self.is_classifier:
            raise AttributeError("predict_proba: the model is a regressor")
        proba = self._proba(self._raw(self._transform(X)))
        if proba.shape[1] == 2:
            near = np.abs(proba[:, 1] - 0.5) <= TOLERANCE
        else:
            top2 = np.partition(proba, proba.shape[1] - 2, axis=1)[:, -2:]
            near = (top2[:, 1] - top2[:, 0]) <= 2 * TOLERANCE  # each side may be off by TOLERANCE
        if near.any():  # a label could differ: these rows get scikit-learn's exact probabilities
            idx = np.flatnonzero(near)
            rows = X.iloc[idx] if hasattr(X, "iloc") else X[idx]
            with self._ties_lock:
                proba[idx] = self.model.predict_proba(rows)
                self._ties += len(idx)
        return proba

    def predict(self, X: Any) -> Any:
        import numpy as np

        if self.is_classifier:
            proba = self.predict_proba(X)
            return np.asarray(self.classes_)[proba.argmax(axis=1)]
        raw = self._raw(self._transform(X))
        if self.booster:
            return boosters.values(self.estimator, raw, self.objective)
        raw = raw[:, 0]
        if self.family in _HGB and self.loss is not None:
            return self.loss.link.inverse(np.ascontiguousarray(raw))
        return raw


# --------------------------------------------------------------------------- deciding
def _check(model: Any, compiled: CompiledModel, X: Any, spec: Any) -> float:
    """The largest difference on ``X``; raises :class:`_NotCompiled` on a mismatch."""
    import numpy as np

    from mlops_provider.core.modeling import predict

    try:
        ref = predict(model, X, spec)
    except MlopsError as err:  # the input itself is the problem: scikit-learn would fail the run too
        err.from_reference = True
        raise
    got = predict(compiled, X, spec)
    if ref.proba is not None:
        diff = float(np.abs(np.asarray(ref.proba) - np.asarray(got.proba)).max(initial=0.0))
        labels = int(np.sum(np.asarray(ref.pred) != np.asarray(got.pred)))
        if diff > TOLERANCE or labels:
            raise _NotCompiled(
                f"on {len(X)} sample rows its probabilities differ from scikit-learn's by up to {diff:.3g} "
                f"(tolerance {TOLERANCE:g}) and {labels} label(s) differ"
            )
        return diff
    a, b = np.asarray(ref.pred, dtype=np.float64), np.asarray(got.pred, dtype=np.float64)
    err = np.abs(a - b)
    both_nan = np.isnan(a) & np.isnan(b)
    bad = ~both_nan & ~(err <= TOLERANCE * np.maximum(1.0, np.abs(a)))
    if bad.any():
        raise _NotCompiled(
            f"on {len(X)} sample rows {int(bad.sum())} prediction(s) differ from scikit-learn's by up to "
            f"{float(np.nanmax(err)):.3g} (tolerance {TOLERANCE:g} x max(1, |value|))"
        )
    return float(np.nanmax(err, initial=0.0))


def edge_rows(X: Any, spec: Any) -> Any:
    """Rows ``X`` may lack, appended to the check sample: every numeric feature missing; every
    categorical feature unseen; every categorical feature missing."""
    import numpy as np
    import pandas as pd

    first = X.iloc[:1]
    extra = []
    if spec.numeric:
        extra.append(first.assign(**{c: np.nan for c in spec.numeric}))
    if spec.categorical:
        unseen = np.array(["\x00mlops-unseen-category"], dtype=object)
        extra.append(first.assign(**{c: unseen for c in spec.categorical}))
        extra.append(first.assign(**{c: np.array([np.nan], dtype=object) for c in spec.categorical}))
    return pd.concat([X, *extra], ignore_index=True) if extra else X


def _library_available() -> None:
    try:
        import tl2cgen  # noqa: F401
        import treelite  # noqa: F401
    except ImportError as err:
        raise _NotCompiled(
            f"treelite/tl2cgen are not installed ({err}); pip install 'airflow-provider-mlops[compiled]'",
            expected=True,
        ) from err
    if _compiler()[0] is None:
        raise _NotCompiled("no C compiler ('gcc') on PATH")


def _checked_sample(model: Any, spec: Any, sample: Any) -> Any:
    """The check sample plus :func:`edge_rows`, unless the model itself refuses those rows."""
    from mlops_provider.core.modeling import predict

    rows = edge_rows(sample, spec)
    try:
        predict(model, rows.iloc[len(sample) :], spec)
    except Exception:  # the model cannot score them: check on the input's own rows only
        return sample
    return rows


def _compile_checked(
    model: Any, spec: Any, engine: Engine, *, model_sha256: str, sample: Any, store: Any, threads: int
) -> CompiledModel:
    _library_available()
    folder = cache_dir(store)
    key = cache_key(model_sha256)
    engine.cache_key = key
    _, est = split_pipeline(model)
    try:
        lib, hit, seconds = compile_library(est, folder, key, threads)
    except MlopsError:
        raise
    except Exception as err:
        raise _NotCompiled(f"the compile failed: {_why(err)}") from err
    engine.cache_hit, engine.compile_seconds = hit, round(seconds, 3)
    compiled = CompiledModel(model, lib, threads=threads)
    X = _checked_sample(model, spec, sample() if callable(sample) else sample)
    engine.max_abs_diff = _check(model, compiled, X, spec)
    engine.check_rows = len(X)
    compiled._ties = 0  # count the run's rows only
    return compiled


def _why(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, (_NotCompiled, CompiledScoringError)):
        return text
    return f"{type(err).__name__}: {text.splitlines()[0][:300]}"


def prepare(
    model: Any,
    spec: Any,
    *,
    mode: str = "auto",
    model_sha256: str,
    sample: Any = None,
    rows: int = 0,
    store: Any = None,
    threads: int = 1,
) -> tuple[Any, Engine]:
    """(the model to score with: ``model`` or a checked :class:`CompiledModel`, the :class:`Engine`).

    :param sample: prepared feature rows of the input (:func:`mlops_provider.core.modeling.prepare_frame`),
        or a function returning them, called only when a compiled model is to be checked.
    :param rows: rows to be scored (``auto`` compiles for :data:`AUTO_MIN_ROWS` or more unless
        already cached). :param store: the artifact store the cache must stay out of.
    :param threads: CPUs the compile and the check may use.
    :raises CompiledScoringError: with ``mode="require"`` when the model cannot be scored compiled.
        With ``"auto"`` nothing that goes wrong here fails the run: scikit-learn scores, and the
        reason is logged (a warning unless it is an expected one: small input, unsupported model)."""
    if mode not in MODES:
        raise CompiledScoringError(
            f"The 'compiled' parameter must be one of {list(MODES)}. Got {mode!r} instead."
        )
    engine = Engine("scikit-learn", mode)
    if mode == "off":
        return model, engine
    try:
        _, est = split_pipeline(model)
        engine.estimator = type(est).__name__
        reason = unsupported_reason(est)
        if reason:
            raise _NotCompiled(reason, expected=True)
        engine.nodes = node_count(est)
        if mode == "auto":
            _auto_worthwhile(engine, model_sha256, rows, store)
        compiled = _compile_checked(
            model, spec, engine, model_sha256=model_sha256, sample=sample, store=store, threads=threads
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except MlopsError as err:
        if getattr(err, "from_reference", False):
            raise
        return _not_compiled(model, engine, err)
    except BaseException as err:
        return _not_compiled(model, engine, err)
    engine.engine = "tl2cgen"
    log.info(
        "Scoring compiled (%s, %d nodes; library %s in %.1f s; checked on %d rows, max |diff| %.2g)",
        engine.estimator,
        engine.nodes,
        "cached" if engine.cache_hit else "compiled",
        engine.compile_seconds,
        engine.check_rows,
        engine.max_abs_diff,
    )
    return compiled, engine


def _not_compiled(model: Any, engine: Engine, err: BaseException) -> tuple[Any, Engine]:
    """``require``: raise; ``auto``: fall back to scikit-learn, saying why."""
    if engine.mode == "require":
        raise CompiledScoringError(
            f"compiled='require' but the model cannot be scored compiled: {_why(err)}"
        ) from err
    engine.reason = _why(err)
    if getattr(err, "expected", False):
        log.info("Scoring with scikit-learn, not compiled: %s", engine.reason)
    else:
        log.warning("Scoring with scikit-learn, not compiled: %s", engine.reason, exc_info=err)
    return model, engine


def _auto_worthwhile(engine: Engine, model_sha256: str, rows: int, store: Any) -> None:
    """Raise :class:`_NotCompiled` when ``auto`` should leave this run to scikit-learn."""
    if engine.estimator in _FOREST:
        raise _NotCompiled(
            f"{engine.estimator}: forests score no faster compiled (measured 0.36-0.73x scikit-learn's "
            "speed, after minutes of compiling); use compiled='require' to compile it anyway",
            expected=True,
        )
    if engine.nodes > AUTO_MAX_NODES:
        raise _NotCompiled(
            f"{engine.estimator} has {engine.nodes} nodes, more than compiled='auto' compiles "
            f"({AUTO_MAX_NODES}); use compiled='require' to compile it anyway",
            expected=True,
        )
    if rows >= AUTO_MIN_ROWS:
        return
    folder = cache_dir(store, create=False)
    cached = False
    if folder.is_dir():  # the cheap test first: most small runs never had anything compiled
        try:
            _library_available()
            cached = (folder / f"{cache_key(model_sha256)}.so").is_file()
        except _NotCompiled:
            pass
    if not cached:
        raise _NotCompiled(
            f"{rows} rows, fewer than compiled='auto' compiles for ({AUTO_MIN_ROWS}) and no compiled "
            "library cached",
            expected=True,
        )


__all__ = [
    "AUTO_MAX_NODES",
    "AUTO_MIN_ROWS",
    "MODES",
    "TOLERANCE",
    "CompiledModel",
    "CompiledScoringError",
    "Engine",
    "cache_dir",
    "cache_key",
    "prepare",
    "unsupported_reason",
]
