"""check_config without Airflow: the settings a retraining run can get wrong are refused before any
data is read, each error naming the parameter, what was expected and what was got."""

from __future__ import annotations

import pytest

from mlops_provider.core.errors import InvalidParameterError
from mlops_provider.core.steps.config import ConfigParams, check_config

FOREST = "sklearn.ensemble.RandomForestClassifier"
RIDGE = "sklearn.linear_model.Ridge"


def test_multiclass_settings_resolve_scorer_names_and_directions():
    params = ConfigParams.build(
        model_name="wine",
        estimator=FOREST,
        model_params='{"n_estimators": 20}',
        seed="7",
        thresholds='{"f1_macro": 0.8, "log_loss": 0.6}',
        compare_metric="roc_auc_ovr",
        promote_if="significantly_better",
        min_improvement="0.01",
    )
    result = check_config(params).to_dict()
    assert result["task"] == "classification" and result["seed"] == 7
    assert result["thresholds"] == {"f1_macro": [">=", 0.8], "log_loss": ["<=", 0.6]}
    assert result["gate_metrics"] == ["f1_macro", "log_loss", "roc_auc_ovr"]
    assert result["promote_if"] == "significantly_better" and result["min_improvement"] == 0.01


def test_regressor_with_positive_label_is_refused():
    params = ConfigParams(model_name="diabetes", estimator=RIDGE, positive_label="yes")
    with pytest.raises(InvalidParameterError, match=r"'positive_label' parameter of check_config.*regressor"):
        check_config(params)


def test_classification_metric_on_a_regressor_is_refused():
    params = ConfigParams(model_name="diabetes", estimator=RIDGE, thresholds={"roc_auc": 0.7})
    with pytest.raises(InvalidParameterError, match="roc_auc"):
        check_config(params)


def test_unknown_metric_names_the_parameter():
    params = ConfigParams(model_name="wine", estimator=FOREST, compare_metric="f1_macr0")
    with pytest.raises(InvalidParameterError, match=r"'compare_metric'.*f1_macr0"):
        check_config(params)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("seed", -1, "seed"),
        ("seed", 2**32, "seed"),
        ("min_improvement", -0.1, "min_improvement"),
        ("promote_if", "much_better", "promote_if"),
        ("model_name", "../wine", "model_name"),
        ("estimator", "", "estimator"),
    ],
)
def test_bad_values_are_refused_when_built(name, value, expected):
    values = {"model_name": "wine", "estimator": FOREST, name: value}
    with pytest.raises(InvalidParameterError, match=rf"The '{expected}' parameter of CheckRetrain.* must be"):
        ConfigParams.build("CheckRetrain (task 'check_config')", **values)


def test_bad_estimator_parameter_is_refused_before_training():
    params = ConfigParams(model_name="wine", estimator=FOREST, model_params={"n_estimators": "ten"})
    with pytest.raises(InvalidParameterError, match="n_estimators"):
        check_config(params)
