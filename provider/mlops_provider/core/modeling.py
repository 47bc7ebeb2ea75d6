"""Training: an allow-listed scikit-learn estimator inside a Pipeline with inferred preprocessing.

The estimator is named by import path. Only paths on the allow-list are imported:

* any class under ``sklearn.`` that is a classifier or regressor;
* ``lightgbm.LGBMClassifier``/``LGBMRegressor`` and ``xgboost.XGBClassifier``/``XGBRegressor``
  when those packages are installed;
* paths registered with :func:`register_estimator` or listed in ``MLOPS_ALLOWED_ESTIMATORS``.

Preprocessing is inferred from column types: numeric columns are median-imputed (and scaled for
linear, kernel and distance-based models); categorical columns are one-hot encoded with rare and
unseen categories grouped, or ordinal-encoded as native categories for HistGradientBoosting.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from mlops_provider.core.errors import (
    EmptyDatasetError,
    EstimatorNotAllowedError,
    InvalidInputError,
    InvalidParameterError,
    MissingColumnsError,
    SingleClassLabelError,
)

log = logging.getLogger(__name__)

ALLOWED_PREFIXES = ("sklearn.",)
ALLOWED_EXTRA = frozenset(
    {"lightgbm.LGBMClassifier", "lightgbm.LGBMRegressor", "xgboost.XGBClassifier", "xgboost.XGBRegressor"}
)
_registered: set[str] = set()
_SCALED_MODULES = ("sklearn.linear_model", "sklearn.svm", "sklearn.neighbors", "sklearn.neural_network")


def register_estimator(path: str) -> None:
    """Allow one more estimator import path (for example your own ``mycompany.models.Ranker``)."""
    _registered.add(path)


def allowed_estimator(path: str) -> bool:
    env = {p.strip() for p in os.environ.get("MLOPS_ALLOWED_ESTIMATORS", "").split(",") if p.strip()}
    return path.startswith(ALLOWED_PREFIXES) or path in ALLOWED_EXTRA or path in _registered or path in env


def resolve_estimator(path: str, owner: str = "TrainModelOperator") -> type:
    """Import the estimator class at ``path`` if it is allow-listed; clear errors otherwise."""
    if not isinstance(path, str) or "." not in path:
        raise EstimatorNotAllowedError(
            f"The 'estimator' parameter of {owner} must be an import path such as "
            f"'sklearn.ensemble.HistGradientBoostingClassifier'. Got {path!r} instead."
        )
    if not allowed_estimator(path):
        raise EstimatorNotAllowedError(
            f"The 'estimator' parameter of {owner} must be an allow-listed import path (sklearn.*, "
            f"{', '.join(sorted(ALLOWED_EXTRA))}, or one registered with register_estimator() / "
            f"MLOPS_ALLOWED_ESTIMATORS). Got {path!r} instead."
        )
    module_name, _, cls_name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, cls_name)
    except (ImportError, AttributeError) as err:
        raise EstimatorNotAllowedError(
            f"The 'estimator' parameter of {owner} names {path!r}, which cannot be imported: {err}"
        ) from err
    from sklearn.base import is_classifier, is_regressor

    if not isinstance(cls, type) or not hasattr(cls, "fit"):
        raise EstimatorNotAllowedError(
            f"The 'estimator' parameter of {owner} must name an estimator class with fit(). Got {path!r} "
            "instead."
        )
    try:
        probe = cls()
    except TypeError as err:
        raise EstimatorNotAllowedError(f"{path!r} cannot be built without arguments: {err}") from err
    if not (is_classifier(probe) or is_regressor(probe)):
        raise EstimatorNotAllowedError(
            f"The 'estimator' parameter of {owner} must name a classifier or regressor. Got {path!r} instead."
        )
    return cls


def _coerce(value: Any, default: Any) -> Any:
    """Form values arrive as JSON: 100.0 for an int parameter becomes 100."""
    if (
        isinstance(default, int)
        and not isinstance(default, bool)
        and isinstance(value, float)
        and value.is_integer()
    ):
        return int(value)
    return value


def _int_as_float(est, name: str, value: Any) -> Any:
    """A whole number where the estimator takes only a non-integer float (``max_features=1`` of a
    HistGradientBoosting model, whose range is (0, 1]) is that float: JSON, and so a form, sends 1.0
    as 1. An int the estimator admits is left alone (RandomForest's ``max_features=1``: one feature)."""
    if not isinstance(value, int) or isinstance(value, bool):
        return value
    constraints = getattr(est, "_parameter_constraints", {}).get(name)
    if not constraints:
        return value
    from sklearn.utils._param_validation import Hidden, make_constraint

    made = [make_constraint(c.constraint if isinstance(c, Hidden) else c) for c in constraints]
    if not any(c.is_satisfied_by(value) for c in made) and any(c.is_satisfied_by(float(value)) for c in made):
        return float(value)
    return value


def make_estimator(
    path: str, params: dict[str, Any] | None, seed: int | None, owner: str = "TrainModelOperator"
):
    """Instantiate and validate an estimator; invalid params raise :class:`InvalidParameterError`."""
    cls = resolve_estimator(path, owner)
    est = cls()
    if params is not None and not isinstance(params, dict):
        raise InvalidParameterError(
            f"The 'model_params' parameter of {owner} must be a dict of {cls.__name__} parameters. Got "
            f"{params!r} instead."
        )
    params = dict(params or {})
    valid = est.get_params(deep=False)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise InvalidParameterError(
            f"The 'model_params' parameter of {owner} has {unknown}, which "
            f"{'is' if len(unknown) == 1 else 'are'} not "
            f"parameter(s) of {cls.__name__}. Valid parameters: {sorted(valid)}."
        )
    params = {k: _coerce(v, valid[k]) for k, v in params.items()}
    params = {k: _int_as_float(est, k, v) for k, v in params.items()}
    if seed is not None and "random_state" in valid and "random_state" not in params:
        params["random_state"] = int(seed)
    est.set_params(**params)
    validate = getattr(est, "_validate_params", None)
    # LightGBM's and XGBoost's wrappers inherit _validate_params but declare no constraints
    if validate is not None and hasattr(est, "_parameter_constraints"):
        try:
            validate()
        except (ValueError, TypeError) as err:
            raise InvalidParameterError(f"Invalid 'model_params' for {owner}: {err}") from err
    return est


@dataclass
class FeatureSpec:
    label: str
    numeric: list[str]
    categorical: list[str]
    task: str  # "classification" | "regression"
    classes: list[Any] = field(default_factory=list)
    positive_label: Any = None  # binary classifiers only: the class the binary metrics are about

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    @property
    def kind(self) -> str:
        """``"binary"``, ``"multiclass"`` or ``"regression"``: what the metrics and outputs follow."""
        if self.task != "classification":
            return "regression"
        return "multiclass" if len(self.classes) > 2 else "binary"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(**d)


def check_columns(columns: list[str], required: list[str], what: str, where: str) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise MissingColumnsError(
            f"{where} lacks the {what} column(s) {missing}. Expected columns {required}; the data has "
            f"{list(columns)}.",
            missing,
        )


def _is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


def infer_spec(
    df, label: str, features: list[str] | None, categorical: list[str] | None, task: str
) -> FeatureSpec:
    cols = list(df.columns)
    check_columns(cols, [label], "label", "The training data")
    if features is None:
        features = [c for c in cols if c != label]
    check_columns(cols, list(features), "feature", "The training data")
    if label in features:
        raise InvalidInputError(f"The label column {label!r} is also listed in 'features'.")
    categorical = list(categorical or [])
    check_columns(list(features), categorical, "categorical", "The 'features' list")
    numeric = [c for c in features if c not in categorical and _is_numeric(df[c])]
    categorical = [c for c in features if c not in numeric]
    return FeatureSpec(label=label, numeric=numeric, categorical=categorical, task=task)


def prepare_frame(df, spec: FeatureSpec, where: str = "The input data"):
    """The feature columns in the types the pipeline was fitted on (numeric float, categorical object)."""
    import numpy as np
    import pandas as pd

    check_columns(list(df.columns), spec.features, "feature", where)
    out = {}
    for c in spec.numeric:
        s = df[c]
        if not _is_numeric(s):
            try:
                s = pd.to_numeric(s, errors="raise")
            except (ValueError, TypeError) as err:
                raise InvalidInputError(
                    f"{where}: column {c!r} must be numeric (the model was trained on numbers). Got dtype "
                    f"{df[c].dtype} with values such as {df[c].dropna().head(3).tolist()}: {err}"
                ) from err
        out[c] = s.astype("float64")
    for c in spec.categorical:
        s = df[c]
        na = s.isna().to_numpy()
        vals = s.astype(object).to_numpy(dtype=object, copy=True)
        if not (pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype)):
            vals = np.array([str(v) for v in vals], dtype=object)
        vals[na] = np.nan
        out[c] = vals
    return pd.DataFrame(out, index=df.index)


def build_pipeline(estimator, spec: FeatureSpec):
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    module = type(estimator).__module__
    native_categories = "categorical_features" in estimator.get_params(deep=False) and module.startswith(
        "sklearn."
    )
    num_steps: list[Any] = [("impute", SimpleImputer(strategy="median", keep_empty_features=True))]
    if module.startswith(_SCALED_MODULES):
        num_steps.append(("scale", StandardScaler()))
    transformers = []
    if spec.numeric:
        transformers.append(("num", Pipeline(num_steps), spec.numeric))
    if spec.categorical:
        if native_categories:
            enc = OrdinalEncoder(
                handle_unknown="use_encoded_value",
                unknown_value=np.nan,
                encoded_missing_value=np.nan,
                min_frequency=5,
                max_categories=250,
            )
        else:
            enc = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=5, sparse_output=False)
        transformers.append(("cat", enc, spec.categorical))
    pre = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    if (
        native_categories
        and spec.categorical
        and estimator.get_params().get("categorical_features")
        in (
            "from_dtype",
            None,
        )
    ):
        n_num = len(spec.numeric)
        mask = [False] * n_num + [True] * len(spec.categorical)
        estimator.set_params(categorical_features=mask)
    return Pipeline([("preprocess", pre), ("model", estimator)])


@dataclass
class TrainResult:
    estimator: str
    params: dict[str, Any]
    seed: int | None
    spec: FeatureSpec
    rows: int
    dropped_rows_missing_label: int
    label_distribution: dict[str, int]
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def _jsonable_params(est) -> dict[str, Any]:
    out = {}
    for k, v in est.get_params(deep=False).items():
        if v is None or isinstance(v, (bool, int, float, str)):
            out[k] = v
        elif isinstance(v, (list, tuple)) and all(isinstance(x, (bool, int, float, str)) for x in v):
            out[k] = list(v)
        else:
            out[k] = repr(v)
    return out


def train_model(
    df,
    *,
    label: str,
    estimator: str,
    params: dict[str, Any] | None = None,
    features: list[str] | None = None,
    categorical: list[str] | None = None,
    seed: int | None = 42,
    positive_label: Any = None,
    owner: str = "TrainModelOperator",
    before_fit: Any = None,
):
    """Fit a Pipeline on ``df``; returns ``(pipeline, TrainResult)``.

    A binary classifier needs ``positive_label`` (the class its binary metrics are about) unless its
    labels are 0/1 or False/True; a multiclass one takes none. Both are checked before fitting."""
    import numpy as np
    from sklearn.base import is_classifier

    est = make_estimator(estimator, params, seed, owner)
    task = "classification" if is_classifier(est) else "regression"
    if len(df) == 0:
        raise EmptyDatasetError("The training data has 0 rows; expected at least 2.")
    spec = infer_spec(df, label, features, categorical, task)
    y_all = df[label]
    keep = y_all.notna().to_numpy()
    dropped = int((~keep).sum())
    if dropped:
        log.warning("Dropping %d row(s) whose label %r is missing", dropped, label)
        df = df.loc[keep]
    y = df[label]
    if len(df) == 0:
        raise EmptyDatasetError(f"Every row of the training data has a missing label {label!r}.")
    if task == "classification":
        counts = y.value_counts()
        if len(counts) < 2:
            raise SingleClassLabelError(
                f"The label column {label!r} has a single class ({_plain(counts.index[0])!r} in all "
                f"{len(y)} rows); a "
                "classifier needs at least 2 classes. Check the extract window or the label definition."
            )
        classes = sorted(counts.index.tolist())
        spec.classes = [_plain(c) for c in classes]
        spec.positive_label = resolve_positive_label(spec.classes, positive_label, label, owner)
        distribution = {str(k): int(v) for k, v in counts.sort_index().items()}
        y = y.to_numpy()
    else:
        y = y.astype("float64").to_numpy()
        distribution = {"count": len(y), "mean": float(np.mean(y))}
    if before_fit is not None:
        before_fit(spec)  # last checks that need the labels, before any fitting
    X = prepare_frame(df, spec, "The training data")
    pipe = build_pipeline(est, spec)
    t0 = time.perf_counter()
    pipe.fit(X, y)
    return pipe, TrainResult(
        estimator=estimator,
        params=_jsonable_params(est),
        seed=seed,
        spec=spec,
        rows=len(X),
        dropped_rows_missing_label=dropped,
        label_distribution=distribution,
        train_seconds=round(time.perf_counter() - t0, 3),
    )


def resolve_positive_label(classes: list[Any], positive_label: Any, label: str, owner: str) -> Any:
    """The positive class of a binary label (as stored in the data), or None for multiclass.

    Given as text (a form field), ``"1"`` matches the class ``1``. Without one, 0/1 and False/True
    labels default to 1/True; any other pair of labels is an error asking for it.
    """
    if len(classes) > 2:
        if positive_label not in (None, ""):
            raise InvalidParameterError(
                f"The 'positive_label' parameter of {owner} must be empty for a multiclass label: {label!r} "
                "has "
                f"{len(classes)} classes {classes[:20]}, measured with multiclass metrics. Got "
                f"{positive_label!r}."
            )
        return None
    if positive_label in (None, ""):
        if set(classes) <= {0, 1} and all(not isinstance(c, float) or c.is_integer() for c in classes):
            return True if all(isinstance(c, bool) for c in classes) else 1
        raise InvalidParameterError(
            f"The 'positive_label' parameter of {owner} is required: the label {label!r} has the two classes "
            f"{classes}, and the binary metrics (precision, recall, F1, ROC AUC...) are about one of them. "
            f"Set positive_label to one of {classes}."
        )
    matches = [
        c for c in classes if c == positive_label and isinstance(c, bool) == isinstance(positive_label, bool)
    ]
    if not matches:
        matches = [c for c in classes if str(c) == str(positive_label)]
    if len(matches) != 1:
        raise InvalidParameterError(
            f"The 'positive_label' parameter of {owner} must be one of the label's classes {classes}. "
            f"Got {positive_label!r} instead."
        )
    return matches[0]


@dataclass
class Predictions:
    """A model's predictions on some rows: ``pred`` (labels or values) and, for a classifier,
    ``proba`` with one column per class in ``classes`` order."""

    pred: Any
    proba: Any = None
    classes: list[Any] = field(default_factory=list)
    positive_label: Any = None

    @property
    def score(self):
        """Binary: P(positive class); multiclass: the probability of the predicted class;
        regression: the prediction."""

        if self.proba is None:
            return self.pred
        if len(self.classes) == 2:
            pos = _class_index(self.classes, self.positive_label)
            return self.proba[:, pos]
        return self.proba.max(axis=1)


def _class_index(classes: list[Any], label: Any) -> int:
    for i, c in enumerate(classes):
        if c == label and (type(c) is bool) == (type(label) is bool):
            return i
    for i, c in enumerate(classes):
        if str(c) == str(label):
            return i
    return len(classes) - 1


def predict(model, X, spec: FeatureSpec) -> Predictions:
    """:class:`Predictions` of ``model`` on the prepared frame ``X``.

    Anything the model raises (other than running out of memory) becomes a
    :class:`~mlops_provider.core.errors.ModelExecutionError`: not retried, since the same model on
    the same rows would fail the same way.
    """
    from mlops_provider.core.errors import MlopsError, ModelExecutionError

    try:
        return _predict(model, X, spec)
    except (MlopsError, MemoryError):
        raise
    except Exception as err:
        raise ModelExecutionError(
            f"The model raised {type(err).__name__} while predicting {len(X)} row(s): {err}"
        ) from err


def _predict(model, X, spec: FeatureSpec) -> Predictions:
    import numpy as np

    if spec.task != "classification":
        return Predictions(np.asarray(model.predict(X)))
    proba = np.asarray(model.predict_proba(X))
    classes = [_plain(c) for c in model.classes_]
    pred = np.asarray(model.classes_)[proba.argmax(axis=1)]
    if len(classes) == 2:  # the positive class wins at 0.5, whichever column it is
        pos = _class_index(classes, spec.positive_label)
        pred = np.where(proba[:, pos] >= 0.5, model.classes_[pos], model.classes_[1 - pos])
    return Predictions(pred, proba, classes, spec.positive_label)


def predict_scores(model, X, spec: FeatureSpec):
    """(prediction, score) arrays; ``score`` as :attr:`Predictions.score`."""
    p = predict(model, X, spec)
    return p.pred, p.score
