"""The MLflow backend against a real local MLflow tracking store and model registry (sqlite, file
artifacts): register, alias, promote (compare-and-set), rollback, load for scoring, idempotent
reruns, large metadata, the operators with ``registry="mlflow"``, and eight concurrent writers."""

from __future__ import annotations

import json
import uuid

import pytest

from mlops_provider.core.errors import IntegrityError, InvalidInputError, NotFoundError
from mlops_provider.core.registry import StaleAliasError
from mlops_provider.registries.mlflow import MlflowRegistry
from tests.registries.conftest import X, check_alias_chain, concurrent_register_and_promote, model_bytes


@pytest.fixture(scope="module")
def mlflow_db(tmp_path_factory):
    """One sqlite tracking + registry store and artifact folder for the module (tests use their own names)."""
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()  # creates the schema once
    return {"uri": uri, "artifacts": f"file://{folder}/artifacts", "folder": folder}


@pytest.fixture
def registry(mlflow_db, store):
    return MlflowRegistry(store, tracking_uri=mlflow_db["uri"], artifact_location=mlflow_db["artifacts"])


def mlflow_alias(registry, name, alias="champion") -> int:
    """The version MLflow's own alias points at (MLflow's client gives str in 2.x, int in 3.x)."""
    return int(registry.client.get_model_version_by_alias(name, alias).version)


@pytest.fixture
def name():
    return f"m-{uuid.uuid4().hex[:8]}"


def test_register_promote_compare_and_set_load_and_score(registry, name):
    mv1, c1 = registry.register(
        name,
        model_bytes(1.0),
        run_key="d/r1/register",
        metrics={"roc_auc": 0.7},
        verdict={"passed": True, "reason": "first"},
        spec={"label": "y"},
    )
    mv2, c2 = registry.register(name, model_bytes(2.0), run_key="d/r2/register", metrics={"roc_auc": 0.8})
    assert (mv1.version, c1, mv2.version, c2) == (1, True, 2, True)
    assert mv1.uri == f"models:/{name}/1" and mv1.model_uri.endswith("/model/model.skops")
    assert registry.get_version(name, 1).metrics == {"roc_auc": 0.7} and registry.get_version(
        name, 1
    ).spec == {"label": "y"}

    # promotion is a compare-and-set on the alias log, mirrored into MLflow's own alias
    registry.promote(name, 1, actor="t", reason="first champion", expected_current=None)
    with pytest.raises(StaleAliasError, match="is v1, not vNone") as err:
        registry.promote(name, 2, actor="late", reason="stale evaluation", expected_current=None)
    assert err.value.current == 1 and registry.get_alias(name) == 1
    assert mlflow_alias(registry, name) == 1
    event = registry.promote(name, 2, actor="t", reason="better", expected_current=1)
    assert (event.version, event.previous_version, event.action) == (2, 1, "promote")
    assert mlflow_alias(registry, name) == 2

    # load for scoring: downloaded from the run's artifacts, sha256-checked, skops-loaded
    model, got = registry.load(name, "@champion")
    assert got.version == 2 and len(model.predict(X[:4])) == 4
    assert model.predict_proba(X[:3]).shape == (3, 2)

    # rollback moves the MLflow alias back too, and history records who and why
    registry.rollback(name, actor="oncall", reason="v2 misbehaves")
    assert registry.get_alias(name) == 1 and mlflow_alias(registry, name) == 1
    assert [(e.version, e.previous_version, e.actor) for e in registry.history(name)] == [
        (1, None, "t"),
        (2, 1, "t"),
        (1, 2, "oncall"),
    ]
    assert registry.aliases(name)["champion"]["reason"] == "v2 misbehaves"
    assert name in registry.list_models()
    # the champion trigger reads the alias log on the artifact store: it follows MLflow promotions
    from mlops_provider.triggers.champion import read_alias

    assert read_alias(registry.store.root, name, "champion", None)["version"] == 1


def test_rerun_returns_existing_version_and_repairs_the_alias(registry, name):
    first, created = registry.register(name, model_bytes(), run_key="d/r1/register", metrics={"roc_auc": 0.7})
    registry.promote(name, first.version, actor="t", reason="r")
    registry.client.delete_registered_model_alias(name, "champion")  # a mirror update that got lost
    again, created_again = registry.register(name, model_bytes(), run_key="d/r1/register")
    assert (again.version, created, created_again) == (first.version, True, False)
    assert mlflow_alias(registry, name) == 1  # re-synced
    other, created_other = registry.register(name, model_bytes(3.0), run_key="d/r1/register")  # new bytes
    assert (other.version, created_other) == (2, True)
    assert registry.find_by_run_key(name, "d/r1/register").version == 2
    assert registry.find_by_run_key(name, "d/other/register") is None
    assert len(registry.client.search_model_versions(f"name = '{name}'")) == 2


def test_metadata_travels_in_tags_and_large_fields_in_the_run_artifact(registry, name):
    lineage = {
        "packages": {f"pkg{i}": "1.0.0" * 20 for i in range(200)},
        "train_dataset": {"uri": "file:///d"},
    }
    verdict = {"passed": True, "reason": "beats champion", "checks": [{"metric": "roc_auc", "delta": 0.01}]}
    mv, _ = registry.register(
        name,
        model_bytes(),
        run_key="d/r/register",
        estimator="sklearn.x.Y",
        metrics={"roc_auc": 0.81, "rows": 100},
        verdict=verdict,
        lineage=lineage,
        params={"C": 1.0, "nested": {"a": 1}},
        tags={"team": "risk"},
    )
    raw = registry.client.get_model_version(name, str(mv.version))
    assert raw.tags["mlops.overflow"] == "lineage" and "mlops.lineage" not in raw.tags  # > 5000 characters
    assert json.loads(raw.tags["mlops.verdict"]) == verdict and raw.tags["mlops.verdict.passed"] == "true"
    assert raw.tags["mlops.sha256"] == mv.model_sha256 and raw.tags["mlops.run_key"] == "d/r/register"
    assert raw.tags["mlops.metadata"] == f"runs:/{raw.run_id}/mlops_metadata.json"
    run = registry.client.get_run(raw.run_id)
    assert run.data.metrics == {"roc_auc": 0.81, "rows": 100.0} and run.data.params == {"C": "1.0"}
    got = registry.get_version(name, mv.version)  # the overflow comes back from the artifact
    assert got.lineage == lineage and got.verdict == verdict and got.tags == {"team": "risk"}
    assert got.params == {"C": 1.0, "nested": {"a": 1}} and got.estimator == "sklearn.x.Y"
    assert got.to_dict() == mv.to_dict()


def test_errors_name_what_is_missing_or_wrong(registry, name, mlflow_db, store):
    registry.register(name, model_bytes(), run_key="r")
    with pytest.raises(NotFoundError, match=r"has no version 7 .*registered versions: \[1\]"):
        registry.get_version(name, 7)
    with pytest.raises(NotFoundError, match=r"no version 7"):
        registry.promote(name, 7, actor="t", reason="r")
    with pytest.raises(NotFoundError, match="no 'champion' alias yet"):
        registry.load(name)
    with pytest.raises(InvalidInputError, match="MLflow alias.*'v2'"):
        registry.promote(name, 1, actor="t", reason="r", alias="v2")
    with pytest.raises(InvalidInputError, match="needs a reason"):
        registry.promote(name, 1, actor="t", reason="")
    with pytest.raises(InvalidInputError, match="'model_bytes' parameter.*str"):
        registry.register(name, "not bytes")
    with pytest.raises(InvalidInputError, match="'tracking_uri' parameter.*''"):
        MlflowRegistry(store, tracking_uri="")
    assert registry.list_versions("never-registered") == [] and registry.get_alias("never-registered") is None
    # a model file changed in MLflow's artifact store after registration is refused
    mv = registry.get_version(name, 1)
    path = mv.model_uri[len("file://") :]
    with open(path, "wb") as f:
        f.write(model_bytes(9.0))
    with pytest.raises(IntegrityError, match="pins"):
        registry.load(name, 1)


def test_get_registry_from_a_connection_and_from_the_environment(mlflow_db, store, monkeypatch):
    from mlops_provider.hooks.registry import get_registry

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_MLFLOW",
        json.dumps(
            {
                "conn_type": "mlflow",
                "host": mlflow_db["uri"],
                "extra": {"experiment": "from-conn", "artifact_location": mlflow_db["artifacts"]},
            }
        ),
    )
    reg = get_registry("mlflow", "mlops_mlflow", store)
    assert isinstance(reg, MlflowRegistry) and (reg.tracking_uri, reg.registry_uri, reg.experiment) == (
        mlflow_db["uri"],
        mlflow_db["uri"],
        "from-conn",
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLFLOW_HTTP", json.dumps({"conn_type": "mlflow", "host": "mlflow", "port": 5000})
    )
    assert get_registry("mlflow", "mlflow_http", store).tracking_uri == "http://mlflow:5000"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db["uri"])
    assert get_registry("MLflow", None, store).tracking_uri == mlflow_db["uri"]
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(InvalidInputError, match="needs 'registry_conn_id'.*MLFLOW_TRACKING_URI"):
        get_registry("mlflow", None, store)
    with pytest.raises(InvalidInputError, match="must name a defined Airflow connection.*'nope'"):
        get_registry("mlflow", "nope", store)
    with pytest.raises(
        InvalidInputError, match=r"must be one of \['artifacts', 'mlflow', 'sagemaker', 'vertex'\]"
    ):
        get_registry("neptune", None, store)


def test_operators_train_evaluate_register_and_score_through_mlflow(warehouse, store, mlflow_db, monkeypatch):
    """The same operators, ``registry="mlflow"``: evaluate loads the MLflow champion, register
    promotes with the champion seen at evaluation, batch scoring loads @champion from MLflow."""
    from mlops_provider.examples.nycflights import CATEGORICAL, FEATURES, LABEL, month_query
    from mlops_provider.operators.batch_score import BatchScoreOperator
    from mlops_provider.operators.evaluate import EvaluateModelOperator
    from mlops_provider.operators.extract import ExtractOperator
    from mlops_provider.operators.register import RegisterModelOperator
    from mlops_provider.operators.train import TrainModelOperator
    from tests.helpers import context_for

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLOPS_MLFLOW",
        json.dumps(
            {
                "conn_type": "mlflow",
                "host": mlflow_db["uri"],
                "extra": {"artifact_location": mlflow_db["artifacts"]},
            }
        ),
    )
    name = f"flights-{uuid.uuid4().hex[:6]}"
    reg_kw = {"registry": "mlflow", "registry_conn_id": "mlops_mlflow"}

    def extract(ds, start, end):
        op = ExtractOperator(
            task_id=f"extract_{ds}",
            dataset_name=ds,
            conn_id="mlops_warehouse",
            sql=month_query(start, end) + " LIMIT 4000",
        )
        return op.execute(context_for(op.task_id))

    train_snap, eval_snap = (
        extract("tr", "2013-05-01", "2013-06-01"),
        extract("ev", "2013-06-01", "2013-07-01"),
    )
    results = []
    for run, c in (("manual__1", 1.0), ("manual__2", 0.05)):
        model = TrainModelOperator(
            task_id="train",
            dataset=train_snap,
            label=LABEL,
            features=FEATURES,
            categorical=CATEGORICAL,
            estimator="sklearn.linear_model.LogisticRegression",
            model_params={"C": c, "max_iter": 300},
        ).execute(context_for("train", run))
        evaluation = EvaluateModelOperator(
            task_id="evaluate", model_name=name, model=model, dataset=eval_snap, on_fail="warn", **reg_kw
        ).execute(context_for("evaluate", run))
        results.append(
            (
                evaluation,
                RegisterModelOperator(
                    task_id="register", model_name=name, evaluation=evaluation, **reg_kw
                ).execute(context_for("register", run)),
            )
        )
    (ev1, r1), (ev2, r2) = results
    assert (r1["version"], r1["promoted"], r1["uri"]) == (1, True, f"models:/{name}/1")
    assert ev2["champion_version"] == 1 and r2["version"] == 2  # evaluated against the MLflow champion
    assert r2["promoted"] == ev2["passed"] and r2["champion_version"] == (2 if ev2["passed"] else 1)
    reg = MlflowRegistry(store, tracking_uri=mlflow_db["uri"])
    assert reg.get_version(name, 2).verdict["champion_version"] == 1
    assert reg.get_version(name, 1).lineage["train_dataset"]["sha256"] == train_snap["sha256"]
    # the registration check ran in a fresh process and the card is kept on the artifact store
    assert reg.get_version(name, 2).lineage["registration_check"]["rows_differing"] == 0
    assert reg.read_card(name, 2).startswith(f"# Model card: {name} v2")
    scored = BatchScoreOperator(
        task_id="score", model_name=name, dataset=eval_snap, passthrough=["flight_id"], **reg_kw
    ).execute(context_for("score", "manual__3"))
    assert scored["rows"] == eval_snap["rows"] and scored["model_version"] == r2["champion_version"]


def test_eight_concurrent_writers(registry, name, eight_models):
    champion = concurrent_register_and_promote(registry, name, eight_models)
    assert mlflow_alias(registry, name) == champion
    aliases = registry.client.get_registered_model(name).aliases  # MLflow's alias -> version map
    assert {a: int(v) for a, v in aliases.items()} == {"champion": champion}
    assert check_alias_chain(registry, name) == champion
