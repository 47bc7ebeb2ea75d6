"""LightGBM and XGBoost scikit-learn wrappers for :mod:`mlops_provider.core.compiled` (used when
those libraries are installed; nothing here imports them unless the model comes from them).

Numerics (each verified by the compiled path's check against the wrapper before use):

* LightGBM computes in float64 (thresholds, leaves, sums) and so does its Treelite import: the
  library's raw margins are LightGBM's; the link (sigmoid with the objective's ``sigmoid:``
  factor, softmax, one-vs-all sigmoids, exp) is applied here in float64 with LightGBM's formulas.
  A categorical value in (-1, 0) is category 0 for LightGBM (it truncates), so it is mapped to 0.
* XGBoost computes in float32, starting the sum from its base margin and adding tree by tree, and
  links with libm ``expf``. So the base margin (XGBoost's own, read by predicting with the first
  trees' leaves zeroed) is folded into the first tree of each class, the generated C gets ``f``
  suffixes on its leaf literals (TL2cgen writes them as doubles), and the library applies the link
  itself (``pred_margin=False``: TL2cgen's float32 sigmoid/softmax/exp, the same libm ``expf``).
"""

from __future__ import annotations

import json
import math
import pathlib
import re
import shutil
import tempfile
from typing import Any

LGB = ("LGBMClassifier", "LGBMRegressor")
XGB = ("XGBClassifier", "XGBRegressor")
# LightGBM objective (first token of the booster's resolved objective) -> link
_LGB_LINKS = {
    "binary": "sigmoid",
    "multiclass": "softmax",
    "multiclassova": "ova",
    "regression": "identity",
    "regression_l1": "identity",
    "huber": "identity",
    "fair": "identity",
    "quantile": "identity",
    "mape": "identity",
    "poisson": "exp",
    "gamma": "exp",
    "tweedie": "exp",
}
_XGB_CLS = ("binary:logistic", "multi:softprob")
_XGB_REG = ("reg:squarederror", "reg:absoluteerror", "reg:pseudohubererror", "count:poisson", "reg:gamma")


def family(est: Any) -> str | None:
    """The wrapper's class name for the exact LightGBM / XGBoost classes (not subclasses), else None."""
    cls = type(est)
    name, module = cls.__name__, cls.__module__
    if name in LGB and module.startswith("lightgbm."):
        import lightgbm

        return name if getattr(lightgbm, name, None) is cls else None
    if name in XGB and module.startswith("xgboost."):
        import xgboost

        return name if getattr(xgboost, name, None) is cls else None
    return None


def _lgb_objective(est: Any) -> str:
    """The booster's resolved objective, e.g. ``"binary sigmoid:1"``, ``"multiclass num_class:3"``."""
    return str(est.booster_.dump_model(num_iteration=1).get("objective", ""))


def objective(est: Any) -> str | None:
    """LightGBM's resolved objective (what :func:`proba` and :func:`values` need), else None."""
    return _lgb_objective(est) if family(est) in LGB else None


def _xgb_booster(est: Any) -> Any:
    """The booster the wrapper predicts with (up to ``best_iteration`` after early stopping)."""
    bst = est.get_booster()
    try:
        best = est.best_iteration
    except AttributeError:
        best = None
    if best is not None and best + 1 < bst.num_boosted_rounds():
        bst = bst[: best + 1]
    return bst


def _lgb_reason(fam: str, est: Any) -> str | None:
    if getattr(est, "_Booster", None) is None:
        return f"{fam} is not fitted"
    if callable(getattr(est, "objective", None)):
        return f"{fam} with a custom objective"
    obj = _lgb_objective(est).split(" ")
    allowed = ("binary", "multiclass", "multiclassova") if fam == "LGBMClassifier" else _LGB_LINKS
    if obj[0] not in allowed or obj[0] not in _LGB_LINKS or "sqrt" in obj[1:]:
        return f"{fam} with objective {' '.join(obj)!r}"
    params = est.booster_.params or {}
    if any(params.get(k) for k in ("linear_tree", "linear_trees")):
        return f"{fam} with linear trees"
    for line in est.booster_.model_to_string().splitlines():
        # missing type Zero (zero_as_missing=True): Treelite imports these splits wrongly
        if line.startswith("decision_type=") and any(
            ((int(d) >> 2) & 3) == 1 and not int(d) & 1 for d in line[14:].split()
        ):
            return f"{fam} with zero_as_missing=True"
    return None


def _xgb_reason(fam: str, est: Any) -> str | None:
    try:
        bst = est.get_booster()
    except Exception:  # NotFittedError
        return f"{fam} is not fitted"
    if callable(getattr(est, "objective", None)):
        return f"{fam} with a custom objective"
    learner = json.loads(bst.save_config())["learner"]
    booster = learner["gradient_booster"]
    if booster.get("name") != "gbtree":
        return f"{fam} with booster {booster.get('name')!r}"
    obj = learner["objective"]["name"]
    if obj not in (_XGB_CLS if fam == "XGBClassifier" else _XGB_REG):
        return f"{fam} with objective {obj!r}"
    if int(learner["learner_model_param"].get("num_target", "1")) > 1:
        return f"multi-output {fam}"
    if booster.get("gbtree_model_param", {}).get("num_parallel_tree", "1") != "1":
        return f"{fam} with num_parallel_tree > 1"
    if any(t == "c" for t in (bst.feature_types or [])):
        return f"{fam} with categorical features"
    missing = getattr(est, "missing", math.nan)
    if missing is not None and not (isinstance(missing, float) and math.isnan(missing)):
        return f"{fam} with missing={missing!r}"
    return None


def unsupported_reason(est: Any) -> str | None:
    fam = family(est)
    return _lgb_reason(fam, est) if fam in LGB else _xgb_reason(fam, est)


def node_count(est: Any) -> int:
    if family(est) in LGB:
        text = est.booster_.model_to_string()
        return int(
            sum(2 * int(line[11:]) - 1 for line in text.splitlines() if line.startswith("num_leaves="))
        )
    model = json.loads(_xgb_booster(est).save_raw(raw_format="json"))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    return int(sum(int(t["tree_param"]["num_nodes"]) for t in trees))


def margin_output(est: Any) -> bool:
    """True if the library returns raw margins (LightGBM), False if it applies the link (XGBoost)."""
    return family(est) in LGB


def categorical_columns(est: Any) -> list[int]:
    """LightGBM's categorical feature indices."""
    if family(est) not in LGB:
        return []
    infos = est.booster_.dump_model(num_iteration=1)["feature_infos"]
    names = est.booster_.feature_name()
    return [i for i, n in enumerate(names) if infos.get(n, {}).get("values")]


# --------------------------------------------------------------------------- import and compile
def _xgb_base_margin(bst: Any, n_features: int) -> Any:
    """XGBoost's own float32 base margin per class: the first iteration with its leaves zeroed."""
    import numpy as np
    import xgboost

    model = json.loads(bst[0:1].save_raw(raw_format="json"))
    for tree in model["learner"]["gradient_booster"]["model"]["trees"]:
        values = tree["split_conditions"]
        for j, child in enumerate(tree["left_children"]):
            if child == -1:
                values[j] = 0.0
    zero = xgboost.Booster(model_file=bytearray(json.dumps(model).encode()))
    x = np.full((1, n_features), np.nan, dtype=np.float32)
    out = zero.predict(xgboost.DMatrix(x), output_margin=True, validate_features=False)
    return np.asarray(out, dtype=np.float32).reshape(-1)


def import_model(est: Any) -> Any:
    """The Treelite model of ``est`` (see the module docstring for XGBoost's base margin)."""
    import numpy as np
    import treelite

    if family(est) in LGB:
        return treelite.frontend.from_lightgbm(est.booster_)  # the best iteration, as predict()
    bst = _xgb_booster(est)
    tm = treelite.frontend.from_xgboost(bst)
    base = _xgb_base_margin(bst, bst.num_features())
    header = tm.get_header_accessor()
    class_id = header.get_field("class_id")
    k = int(header.get_field("num_class")[0])
    if base.size != k or np.any(class_id < 0):
        raise ValueError(f"unexpected XGBoost layout: {base.size} base margins for {k} classes")
    for c in range(k):  # XGBoost: out = base; out += leaf_0; ... in float32
        tree = tm.get_tree_accessor(int(np.flatnonzero(class_id == c)[0]))
        leaf = tree.get_field("cleft") == -1
        values = np.array(tree.get_field("leaf_value"), dtype=np.float32, copy=True)
        values[leaf] = values[leaf] + base[c]
        tree.set_field("leaf_value", values)
    header.set_field("base_scores", np.zeros_like(header.get_field("base_scores")))
    return tm


_LEAF_LITERAL = re.compile(r"(result\[\d+\] \+= )(-?[0-9][0-9.]*(?:e[-+]?[0-9]+)?|-?inf|-?nan)(;)")


def _float_literal(lit: str) -> str:
    if "inf" in lit:
        return lit.replace("inf", "INFINITY")
    if "nan" in lit:
        return lit.replace("nan", "NAN")
    if "." not in lit and "e" not in lit:
        lit += ".0"
    return lit + "f"


def export_lib(tm: Any, libpath: str, *, units: int, nthread: int) -> None:
    """``tl2cgen.export_lib``; for float32 leaves (XGBoost) the generated leaf literals get an ``f``
    suffix first, so the sum is float + float as in XGBoost."""
    import tl2cgen

    if str(tm.output_type) != "float32":
        tl2cgen.export_lib(
            tm, toolchain="gcc", libpath=libpath, params={"parallel_comp": units}, nthread=nthread
        )
        return
    with tempfile.TemporaryDirectory(prefix="mlops-tl2cgen-") as tmp:
        tl2cgen.generate_c_code(tm, tmp, params={"parallel_comp": units})
        patched = 0
        for src in pathlib.Path(tmp).glob("*.c"):
            text, n = _LEAF_LITERAL.subn(
                lambda m: m.group(1) + _float_literal(m.group(2)) + m.group(3), src.read_text()
            )
            patched += n
            src.write_text(text)
        if patched == 0:
            raise RuntimeError("no leaf literal found in the generated code")
        built = tl2cgen.create_shared("gcc", tmp, nthread=nthread, long_build_time_warning=False)
        shutil.move(built, libpath)


# --------------------------------------------------------------------------- inputs and outputs
def fix_categories(est: Any, X: Any, columns: list[int]) -> Any:
    """LightGBM truncates a categorical value: (-1, 0) is category 0 (the compiled code would send
    it right as a negative value)."""
    if not columns:
        return X
    sub = X[:, columns]
    sub[(sub > -1.0) & (sub < 0.0)] = 0.0
    X[:, columns] = sub
    return X


def proba(est: Any, out: Any, lgb_objective: str | None = None) -> Any:
    """``predict_proba`` from the library's output (LightGBM: margins; XGBoost: probabilities)."""
    import numpy as np

    if family(est) == "XGBClassifier":
        p = np.asarray(out, dtype=np.float32)
        if p.shape[1] == 1:  # the wrapper's float32 1 - p
            p = np.column_stack([np.float32(1) - p[:, 0], p[:, 0]])
        return p.astype(np.float64)
    raw = np.asarray(out, dtype=np.float64)
    obj = (lgb_objective or _lgb_objective(est)).split(" ")
    if obj[0] == "multiclass":  # LightGBM's softmax: max subtracted, sequential sum
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        total = np.zeros(len(raw))
        for c in range(raw.shape[1]):
            total += e[:, c]
        return e / total[:, None]
    alpha = 1.0
    for token in obj[1:]:
        if token.startswith("sigmoid:"):
            alpha = float(token.split(":", 1)[1])
    p = 1.0 / (1.0 + np.exp(-alpha * raw))
    return np.column_stack([1.0 - p[:, 0], p[:, 0]]) if p.shape[1] == 1 else p


def values(est: Any, out: Any, lgb_objective: str | None = None) -> Any:
    """A regressor's ``predict`` from the library's output."""
    import numpy as np

    raw = np.asarray(out, dtype=np.float64).reshape(len(out), -1)[:, 0]
    if family(est) == "XGBRegressor":
        return raw.astype(np.float32).astype(np.float64)
    if _LGB_LINKS[(lgb_objective or _lgb_objective(est)).split(" ")[0]] == "exp":
        return np.exp(raw)
    return raw
