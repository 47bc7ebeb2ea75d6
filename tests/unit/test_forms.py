"""The retraining templates' Params form (mlops_provider/forms.py), as a user edits the config block:
typed fields per exposed hyperparameter and gate metric, refused values at trigger (the same
``params.deep_merge(conf).validate()`` that ``SerializedDAG.create_dagrun`` runs for the trigger form
and ``POST /api/v2/dags/{dag_id}/dagRuns``), and clear parse errors for what cannot be a field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "provider/mlops_provider/templates"
TEMPLATE = TEMPLATES / "mlops_retrain_scheduled.py"
HGB_HYPER = (
    'HYPERPARAMETERS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31, '
    '"l2_regularization": 0.0,\n                   "early_stopping": "auto"}'
)


def variant(**config: str):
    """The scheduled template with config-block lines replaced (``NAME="python literal"``), parsed."""
    src = TEMPLATE.read_text()
    for name, value in config.items():
        if name == "HYPERPARAMETERS":
            assert HGB_HYPER in src
            src = src.replace(HGB_HYPER, f"HYPERPARAMETERS = {value}")
            continue
        line = f"{name} = {value}"
        src, n = re.subn(rf"^{name} = .*$", lambda _, line=line: line, src, count=1, flags=re.M)
        assert n == 1, name
    namespace: dict = {"__name__": "variant"}
    exec(compile(src, "variant.py", "exec"), namespace)
    return namespace["dag"]


@pytest.fixture(scope="module")
def default_dag():
    return variant()


def trigger(dag, conf: dict) -> dict:
    """What creating a run does with ``conf`` (SerializedDAG.create_dagrun: deep_merge + validate)."""
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    return serialized.params.deep_merge(conf).validate()


@pytest.mark.parametrize(
    "conf, message",
    [
        ({"max_iter": "ten"}, "'ten' is not of type 'integer'"),
        ({"max_iter": 0}, "0 is less than the minimum of 1"),
        ({"max_iter": 2.5}, "2.5 is not of type 'integer'"),
        ({"learning_rate": 0}, "0 is less than or equal to the minimum of 0"),
        ({"max_leaf_nodes": 1}, "1 is less than the minimum of 2"),
        ({"early_stopping": "sometimes"}, "'sometimes' is not one of"),
        ({"train_months": 25}, "25 is greater than the maximum of 24"),
        ({"train_months": 0}, "0 is less than the minimum of 1"),
        ({"min_roc_auc": 1.2}, "1.2 is greater than the maximum of 1"),
        ({"min_improvement": -0.01}, "-0.01 is less than the minimum of 0"),
        ({"seed": -1}, "-1 is less than the minimum of 0"),
    ],
)
def test_invalid_form_values_are_refused_when_the_run_is_created(default_dag, conf, message):
    from airflow.exceptions import ParamValidationError

    (key,) = conf
    with pytest.raises(ParamValidationError, match=f"Invalid input for param {key}: ") as err:
        trigger(default_dag, conf)
    assert message in str(err.value)


def test_valid_form_values_pass_and_are_gathered_for_the_estimator(default_dag):
    """The fields go back into model_params/thresholds (the check_config and train tasks' Jinja);
    scikit-learn builds the estimator with them."""
    from airflow.sdk.definitions._internal.templater import NativeEnvironment

    from mlops_provider.core.modeling import make_estimator
    from mlops_provider.core.steps.config import ConfigParams, check_config

    conf = {"max_iter": 7, "learning_rate": 0.2, "max_leaf_nodes": None, "early_stopping": False}
    values = trigger(default_dag, {**conf, "train_months": 24, "min_roc_auc": 0.7})
    check = default_dag.get_task("check_config")
    env = NativeEnvironment()
    model_params = env.from_string(check.model_params).render(params=values)
    thresholds = env.from_string(check.thresholds).render(params=values)
    assert default_dag.get_task("train").model_params == check.model_params
    config = ConfigParams.build(
        model_name="flights_delay", estimator=check.estimator, model_params=model_params,
        thresholds=thresholds, positive_label=1,
    )  # fmt: skip
    assert config.model_params == {**conf, "l2_regularization": 0.0}
    assert check_config(config).thresholds == {"roc_auc": [">=", 0.7]}
    est = make_estimator(check.estimator, config.model_params, 42)
    assert {k: est.get_params()[k] for k in conf} == conf


def test_fields_are_typed_titled_and_described(default_dag):
    p = default_dag.params
    assert p.get_param("max_iter").schema["type"] == "integer"
    assert p.get_param("max_iter").schema["title"] == "Max iter"
    assert p.get_param("max_iter").description.startswith("The maximum number of iterations")
    assert p.get_param("early_stopping").schema["enum"] == ["auto", True, False]
    for key in ("min_improvement", "seed", "train_months", "min_roc_auc"):
        assert p.get_param(key).schema["title"] and p.get_param(key).description, key
    # bounds under allOf: Airflow's number input clamps to a top-level minimum/maximum silently
    assert "minimum" not in p.get_param("train_months").schema
    assert "model_params" not in p and "thresholds" not in p


def test_a_regression_variant_gets_its_estimators_fields():
    dag = variant(
        ESTIMATOR='"sklearn.ensemble.RandomForestRegressor"',
        HYPERPARAMETERS='{"n_estimators": 50, "max_features": 1.0, "min_samples_leaf": 5}',
        THRESHOLDS='{"rmse": 55.0, "mae": {"max": 40.0}}',
        POSITIVE_LABEL="None",
    )
    fields = {k for k in dag.params if "x-mlops-hyperparameter" in dag.params.get_param(k).schema}
    assert fields == {"n_estimators", "max_features", "min_samples_leaf"}  # no class_weight etc.
    assert {"max_rmse", "max_mae"} <= set(dag.params) and "min_roc_auc" not in dag.params
    assert dag.params.get_param("max_rmse").schema["allOf"] == [{"minimum": 0}]
    assert trigger(dag, {"max_features": "sqrt", "max_rmse": 30.0})["max_features"] == "sqrt"
    for bad in ({"max_rmse": -1.0}, {"max_features": "cube"}, {"n_estimators": 0}, {"min_samples_leaf": 1.5}):
        with pytest.raises(Exception, match=f"param {next(iter(bad))}"):
            trigger(dag, bad)


def test_a_multiclass_variant_offers_the_estimators_choices():
    dag = variant(
        ESTIMATOR='"sklearn.linear_model.LogisticRegression"',
        HYPERPARAMETERS='{"C": 1.0, "class_weight": "balanced", "solver": "lbfgs"}',
        THRESHOLDS='{"f1_macro": 0.3}',
        POSITIVE_LABEL="None",
    )
    assert dag.params.get_param("class_weight").schema["enum"] == ["balanced", None]
    assert "saga" in dag.params.get_param("solver").schema["enum"]
    assert dag.params.get_param("min_f1_macro").schema["allOf"] == [{"minimum": 0, "maximum": 1}]
    with pytest.raises(Exception, match="param C"):
        trigger(dag, {"C": 0})


REGRESSOR = {"ESTIMATOR": '"sklearn.ensemble.RandomForestRegressor"', "HYPERPARAMETERS": "{}"}


@pytest.mark.parametrize(
    "config, message",
    [
        ({"HYPERPARAMETERS": '{"random_state": 3}'},
         "HYPERPARAMETERS['random_state'] in the configuration block cannot be a form field: the 'seed'"),
        ({"HYPERPARAMETERS": '{"categorical_features": [0, 1]}'},
         "HYPERPARAMETERS['categorical_features'] = [0, 1] in the configuration block is refused by its"),
        ({"HYPERPARAMETERS": '{"monotonic_cst": None}'},
         "HYPERPARAMETERS['monotonic_cst'] in the configuration block cannot be a form field of "
         "HistGradientBoostingClassifier: it takes an array-like"),
        ({"HYPERPARAMETERS": '{"max_iters": 10}'},
         "HYPERPARAMETERS['max_iters'] in the configuration block is not a parameter of "
         "sklearn.ensemble.HistGradientBoostingClassifier. Did you mean 'max_iter'"),
        ({"HYPERPARAMETERS": '{"max_iter": 0}'},
         "HYPERPARAMETERS['max_iter'] = 0 in the configuration block is refused by its form field: "
         "0 is less than the minimum of 1"),
        ({"TRAIN_MONTHS": "30"}, "TRAIN_MONTHS = 30 in the configuration block is refused"),
        ({"THRESHOLDS": '{"rmse": {"min": 3.0}}', **REGRESSOR},
         "THRESHOLDS['rmse'] = {'min': 3.0} in the configuration block: lower rmse is better, so its "
         "threshold is a ceiling"),
        ({"THRESHOLDS": '{"roc_auc": 1.5}'}, "THRESHOLDS['roc_auc'] = 1.5 in the configuration block is"),
    ],
)  # fmt: skip
def test_a_config_entry_that_cannot_be_a_field_fails_the_parse_naming_it(config, message):
    from mlops_provider.core.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError) as err:
        variant(**config)
    assert message in str(err.value)


def test_an_estimator_without_shipped_schema_gets_fields_typed_after_their_values(caplog):
    from mlops_provider.forms import hyperparameter_fields

    with caplog.at_level("INFO", logger="mlops_provider.forms"):
        fields = hyperparameter_fields("sklearn.svm.SVC", {"C": 2, "kernel": "rbf", "probability": True})
    assert {k: p.schema["type"] for k, p in fields.items()} == {"C": "number", "kernel": "string",
                                                                  "probability": "boolean"}  # fmt: skip
    assert "No typed form fields are shipped for sklearn.svm.SVC" in caplog.text
