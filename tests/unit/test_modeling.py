import numpy as np
import pandas as pd
import pytest

from mlops_provider.core import modeling
from mlops_provider.core.errors import (
    EstimatorNotAllowedError,
    InvalidParameterError,
    MissingColumnsError,
    SingleClassLabelError,
)
from mlops_provider.core.serialization import dump_model, sha256_bytes
from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL

HGB = "sklearn.ensemble.HistGradientBoostingClassifier"


@pytest.mark.parametrize(
    "path, match",
    [
        ("os.system", "allow-listed import path"),
        ("builtins.eval", "allow-listed import path"),
        ("sklearn.ensemble.NoSuchForest", "cannot be imported"),
        ("sklearn.preprocessing.StandardScaler", "classifier or regressor"),
        ("HistGradientBoostingClassifier", "import path such as"),
    ],
)
def test_estimator_allow_list(path, match):
    with pytest.raises(EstimatorNotAllowedError, match=match) as err:
        modeling.make_estimator(path, {}, 0)
    assert repr(path) in str(err.value) or path in str(err.value)


def test_registered_estimator_is_allowed(monkeypatch):
    assert not modeling.allowed_estimator("tests.unit.custom.Model")
    monkeypatch.setenv("MLOPS_ALLOWED_ESTIMATORS", "tests.unit.custom.Model")
    assert modeling.allowed_estimator("tests.unit.custom.Model")


def test_invalid_params_name_the_parameter():
    with pytest.raises(InvalidParameterError, match=r"\['max_iterations'\].*Valid parameters:.*max_iter"):
        modeling.make_estimator(HGB, {"max_iterations": 10}, 0)
    with pytest.raises(
        InvalidParameterError, match=r"'max_iter' parameter of HistGradientBoostingClassifier.*'ten'"
    ):
        modeling.make_estimator(HGB, {"max_iter": "ten"}, 0)
    with pytest.raises(InvalidParameterError, match="must be a dict"):
        modeling.make_estimator(HGB, ["max_iter", 10], 0)
    est = modeling.make_estimator(HGB, {"max_iter": 20.0}, 7)  # a JSON form sends 20.0
    assert est.max_iter == 20 and isinstance(est.max_iter, int) and est.random_state == 7


def test_train_on_real_flights_is_reproducible(flights_frame):
    train, evaluation = flights_frame
    sample = train.sample(20_000, random_state=0)
    kw = dict(
        label=LABEL,
        estimator=HGB,
        params={"max_iter": 30},
        features=FEATURES,
        categorical=CATEGORICAL,
        seed=3,
    )
    m1, r1 = modeling.train_model(sample, **kw)
    m2, _ = modeling.train_model(sample, **kw)
    assert sha256_bytes(dump_model(m1)) == sha256_bytes(dump_model(m2))
    assert r1.rows == 20_000 and r1.spec.categorical == CATEGORICAL and r1.spec.classes == [0, 1]
    assert r1.params["random_state"] == 3 and r1.spec.positive_label == 1
    X = modeling.prepare_frame(evaluation, r1.spec)
    _, score = modeling.predict_scores(m1, X, r1.spec)
    assert score.shape == (len(evaluation),) and 0 <= score.min() and score.max() <= 1


def test_unseen_and_missing_categories_at_predict_time(flights_frame):
    train, _ = flights_frame
    model, res = modeling.train_model(
        train.sample(5000, random_state=1),
        label=LABEL,
        estimator=HGB,
        params={"max_iter": 10},
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    new = train.head(3).copy()
    new["carrier"] = pd.array(["ZZ", None, "UA"], dtype="string")
    _, score = modeling.predict_scores(model, modeling.prepare_frame(new, res.spec), res.spec)
    assert np.isfinite(score).all()


def test_linear_model_gets_scaling_and_one_hot(flights_frame):
    train, _ = flights_frame
    model, res = modeling.train_model(
        train.sample(5000, random_state=2),
        label=LABEL,
        estimator="sklearn.linear_model.LogisticRegression",
        params={"max_iter": 500},
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    steps = model.named_steps["preprocess"].named_transformers_
    assert "scale" in steps["num"].named_steps
    assert type(steps["cat"]).__name__ == "OneHotEncoder"


def test_single_class_label_is_refused(flights_frame):
    train, _ = flights_frame
    only_on_time = train[train[LABEL] == 0].head(500)
    with pytest.raises(SingleClassLabelError, match=r"'late' has a single class \(0 in all 500 rows\)"):
        modeling.train_model(only_on_time, label=LABEL, estimator=HGB, features=FEATURES)


def test_missing_and_renamed_columns_are_named(flights_frame):
    train, _ = flights_frame
    renamed = train.head(100).rename(columns={"carrier": "airline"})
    with pytest.raises(MissingColumnsError, match=r"feature column\(s\) \['carrier'\]") as err:
        modeling.train_model(renamed, label=LABEL, estimator=HGB, features=FEATURES)
    assert err.value.missing == ["carrier"] and "airline" in str(err.value)
    with pytest.raises(MissingColumnsError, match=r"label column\(s\) \['is_late'\]"):
        modeling.train_model(train.head(100), label="is_late", estimator=HGB, features=FEATURES)


def test_non_numeric_values_in_numeric_column_at_scoring(flights_frame):
    train, _ = flights_frame
    model, res = modeling.train_model(
        train.sample(3000, random_state=0),
        label=LABEL,
        estimator=HGB,
        params={"max_iter": 5},
        features=FEATURES,
        categorical=CATEGORICAL,
    )
    bad = train.head(5).copy()
    bad["distance"] = ["far", "near", "x", "y", "z"]
    with pytest.raises(Exception, match="column 'distance' must be numeric"):
        modeling.prepare_frame(bad, res.spec)


def test_regressor_task():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500)})
    df["y"] = 2 * df["x"] + (df["c"] == "a")
    model, res = modeling.train_model(df, label="y", estimator="sklearn.linear_model.Ridge")
    assert res.spec.task == "regression" and res.spec.categorical == ["c"]


def test_model_bytes_are_identical_across_processes():
    """A retried or cleared task runs in a new process: it must produce the same model file."""
    import subprocess
    import sys

    code = (
        "import numpy as np, pandas as pd\n"
        "from mlops_provider.core.modeling import train_model\n"
        "from mlops_provider.core.serialization import dump_model, sha256_bytes\n"
        "rng = np.random.default_rng(0)\n"
        "df = pd.DataFrame({'x': rng.normal(size=3000), 'c': rng.choice(['a', 'b', 'c'], 3000)})\n"
        "df['y'] = ((df.x + (df.c == 'a')) > 0.5).astype(int)\n"
        "m, _ = train_model(df, label='y', estimator='sklearn.ensemble.HistGradientBoostingClassifier',\n"
        "                   params={'max_iter': 10}, seed=5)\n"
        "print(sha256_bytes(dump_model(m)))\n"
    )
    shas = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(shas) == 1 and len(shas.pop()) == 64


# ----------------------------------------------------------------------------- positive label
def _binary(labels):
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    return pd.DataFrame(
        {"x": x, "y": np.where(x + rng.normal(scale=0.5, size=200) > 0, labels[1], labels[0])}
    )


def test_string_binary_labels_need_a_positive_label():
    df = _binary(["stays", "churns"])
    with pytest.raises(
        InvalidParameterError,
        match=r"'positive_label' parameter of TrainModelOperator is required.*"
        r"\['churns', 'stays'\]",
    ):
        modeling.train_model(df, label="y", estimator="sklearn.linear_model.LogisticRegression")
    model, res = modeling.train_model(
        df, label="y", estimator="sklearn.linear_model.LogisticRegression", positive_label="churns"
    )
    assert res.spec.positive_label == "churns" and res.spec.kind == "binary"
    p = modeling.predict(model, modeling.prepare_frame(df, res.spec), res.spec)
    churn = list(model.classes_).index("churns")
    assert np.array_equal(p.score, model.predict_proba(modeling.prepare_frame(df, res.spec))[:, churn])


@pytest.mark.parametrize(
    "labels, given, expected",
    [([0, 1], None, 1), ([False, True], None, True), ([0, 1], "0", 0), ([3, 7], 7, 7), ([3, 7], "7", 7)],
)
def test_positive_label_defaults_and_form_text(labels, given, expected):
    res = modeling.train_model(
        _binary(labels), label="y", estimator="sklearn.linear_model.LogisticRegression", positive_label=given
    )[1]
    assert res.spec.positive_label == expected and type(res.spec.positive_label) is type(expected)


def test_positive_label_must_be_a_class_and_is_refused_for_multiclass(flights_frame):
    with pytest.raises(
        InvalidParameterError, match=r"must be one of the label's classes \[0, 1\]\. Got 'late'"
    ):
        modeling.train_model(
            _binary([0, 1]),
            label="y",
            estimator="sklearn.linear_model.LogisticRegression",
            positive_label="late",
        )
    df = _binary(["a", "b"])
    df.loc[::3, "y"] = "c"
    with pytest.raises(InvalidParameterError, match="must be empty for a multiclass label"):
        modeling.train_model(
            df, label="y", estimator="sklearn.linear_model.LogisticRegression", positive_label="a"
        )
    model, res = modeling.train_model(df, label="y", estimator="sklearn.linear_model.LogisticRegression")
    assert (
        res.spec.kind == "multiclass"
        and res.spec.positive_label is None
        and res.spec.classes == ["a", "b", "c"]
    )


def test_a_binary_metric_on_a_multiclass_label_is_refused_before_fitting():
    from mlops_provider.core import metrics as M

    df = _binary(["a", "b"])
    df.loc[::3, "y"] = "c"
    fitted = []

    def check(spec):
        M.check_fit(M.resolve("f1"), spec.kind, "gate_metrics", "TrainModelOperator")
        fitted.append(spec)

    with pytest.raises(InvalidParameterError, match="'f1', which does not fit a multiclass classifier"):
        modeling.train_model(
            df, label="y", estimator="sklearn.linear_model.LogisticRegression", before_fit=check
        )
    assert fitted == []
