"""The registry page under a restrictive auth manager: reads are authorized per DAG like writes.

The plugin's FastAPI app runs in-process (TestClient, mounted at /mlops), authenticated by real JWTs
through Airflow's own dependency; the auth manager (tests/security/restrictive_auth.py) lets alice
read only ``wine_retrain`` and bob only ``iris_retrain``; ``root`` may read everything. The
registry holds ``wine_quality`` v1 (from wine_retrain) and v2 (from iris_retrain, a DAG alice may
not read), and ``iris_species`` v1 (iris_retrain), with their datasets, run folders, predictions
and drift reports."""

from __future__ import annotations

import json
import os
import secrets

import pytest

from tests.security.conftest import MODEL

ORIGIN = "http://testserver"
WINE_DAG, IRIS_DAG, IRIS = "wine_retrain", "iris_retrain", "iris_species"


@pytest.fixture(scope="module")
def page(airflow_db, tmp_path_factory, wine):
    import pyarrow as pa
    from airflow.api_fastapi import app as airflow_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from sklearn.datasets import load_iris

    from mlops_provider import settings
    from mlops_provider.core.datasets import write_snapshot
    from mlops_provider.core.modeling import train_model
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.serialization import dump_model
    from mlops_provider.core.storage import ArtifactStore
    from mlops_provider.plugins.registry_view import URL_PREFIX, app

    root = tmp_path_factory.mktemp("page") / "artifacts"
    store = ArtifactStore(f"file://{root}")
    reg = ModelRegistry(store)
    iris = load_iris(as_frame=True).frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    keys: dict[str, str] = {}
    for model, dag, frame, label in (
        (MODEL, WINE_DAG, wine, "cultivar"),
        (MODEL, IRIS_DAG, wine, "cultivar"),
        (IRIS, IRIS_DAG, iris, "target"),
    ):
        snap = write_snapshot(
            store, f"{dag}_train", [pa.Table.from_pandas(frame)], source="sklearn", extra={"dag_id": dag}
        )
        pipe, result = train_model(
            frame,
            label=label,
            estimator="sklearn.linear_model.LogisticRegression",
            params={"max_iter": 500},
            seed=1,
        )
        run = f"manual__{len(reg.list_versions(model)) + 1}"
        mv, _ = reg.register(
            model,
            dump_model(pipe),
            spec=result.spec.to_dict(),
            lineage={"dag_id": dag, "run_id": run, "train_dataset": snap.to_dict()},
        )
        reg.promote(model, mv.version, actor="test", reason="setup")
        keys[f"{model}@{mv.version}"] = f"registry/{model}/versions/{mv.version}/model.skops"
        keys[f"run:{dag}:{run}"] = f"runs/{dag}/{run}/evaluate/evaluation.html"
        store.write_bytes(keys[f"run:{dag}:{run}"], b"<html>report</html>")
        keys[f"data:{dag}"] = f"{store.key_of(snap.uri)}/data.parquet"
        keys[f"pred:{model}:{dag}"] = f"predictions/{model}/{dag}/{run}/predictions.parquet"
        store.write_bytes(keys[f"pred:{model}:{dag}"], b"PAR1")
        keys[f"drift:{model}"] = f"drift/{model}/report.json"
        store.write_json(keys[f"drift:{model}"], {"model": model})
    store.write_bytes("notes.txt", b"not an artifact")
    store.write_bytes("etc/passwd", b"root:x:0:0")

    env = {
        "MLOPS_ARTIFACT_ROOT": f"file://{root}",
        "AIRFLOW__CORE__AUTH_MANAGER": "tests.security.restrictive_auth.RestrictiveAuthManager",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "MLOPS_TEST_DAG_READERS": json.dumps({"alice": [WINE_DAG], "bob": [IRIS_DAG]}),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        mp.delenv("MLOPS_ARTIFACT_CONN_ID", raising=False)
        airflow_app._AuthManagerState.instance = None
        auth = airflow_app.create_auth_manager()
        auth.init()
        assert type(auth).__name__ == "RestrictiveAuthManager"
        settings.clear_cache()
        server = FastAPI()
        server.mount(URL_PREFIX, app)
        tokens = {
            u: auth.generate_jwt(SimpleAuthManagerUser(username=u, role="admin"))
            for u in ("alice", "bob", "root")
        }
        try:
            with TestClient(server, base_url=ORIGIN) as client:
                yield {
                    "client": client,
                    "tokens": tokens,
                    "keys": keys,
                    "store": store,
                    "registry": reg,
                    "mp": mp,
                }
        finally:
            airflow_app._AuthManagerState.instance = None  # later tests build their own
            settings.clear_cache()


def get(page, path, user="alice", **kw):
    return page["client"].get(path, headers={"Authorization": f"Bearer {page['tokens'][user]}"}, **kw)


def post(page, path, data=None, user="root", **kw):
    headers = {"Authorization": f"Bearer {page['tokens'][user]}", "Origin": ORIGIN, **kw.pop("headers", {})}
    return page["client"].post(path, data=data, headers=headers, follow_redirects=False, **kw)


def test_the_index_lists_only_models_with_a_readable_version(page):
    alice, bob, root = (
        get(page, "/mlops/").text,
        get(page, "/mlops/", "bob").text,
        get(page, "/mlops/", "root").text,
    )
    assert MODEL in alice and IRIS not in alice
    assert MODEL in bob and IRIS in bob and MODEL in root and IRIS in root


def test_a_model_page_shows_only_readable_versions(page):
    r = get(page, f"/mlops/models/{MODEL}")
    assert r.status_code == 200
    assert f"/mlops/models/{MODEL}/versions/1" in r.text and f"/mlops/models/{MODEL}/versions/2" not in r.text
    assert f"/mlops/models/{MODEL}/versions/2" in get(page, f"/mlops/models/{MODEL}", "root").text


def test_a_model_with_no_readable_version_is_unknown(page):
    r = get(page, f"/mlops/models/{IRIS}")
    assert r.status_code == 404 and "that you may read" in r.text
    assert get(page, f"/mlops/models/{IRIS}", "bob").status_code == 200


def test_a_version_of_an_unreadable_dag_is_not_found(page):
    r = get(page, f"/mlops/models/{MODEL}/versions/2")
    assert r.status_code == 404 and "has no version 2 that you may read" in r.text and IRIS_DAG not in r.text
    assert get(page, f"/mlops/models/{MODEL}/versions/1").status_code == 200
    assert get(page, f"/mlops/models/{MODEL}/versions/2", "bob").status_code == 200


@pytest.mark.parametrize(
    "which",
    [
        f"{MODEL}@2",
        f"{IRIS}@1",
        f"run:{IRIS_DAG}:manual__2",
        f"data:{IRIS_DAG}",
        f"pred:{IRIS}:{IRIS_DAG}",
        f"pred:{MODEL}:{IRIS_DAG}",
        f"drift:{IRIS}",
    ],
)
def test_every_artifact_route_of_an_unreadable_dag_is_not_found(page, which):
    key = page["keys"][which]
    r = get(page, f"/mlops/artifacts/{key}")
    assert r.status_code == 404 and "that you may read" in r.text, (key, r.status_code)
    assert get(page, f"/mlops/artifacts/{key}", "root").status_code == 200


@pytest.mark.parametrize(
    "which",
    [
        f"{MODEL}@1",
        f"run:{WINE_DAG}:manual__1",
        f"data:{WINE_DAG}",
        f"pred:{MODEL}:{WINE_DAG}",
        f"drift:{MODEL}",
    ],
)
def test_artifacts_of_a_readable_dag_are_served(page, which):
    key = page["keys"][which]
    r = get(page, f"/mlops/artifacts/{key}")
    assert r.status_code == 200 and r.content == page["store"].read_bytes(key)


@pytest.mark.parametrize(
    "key", ["notes.txt", "etc/passwd", "registry", "datasets/wine_retrain_train/_staging/x"]
)
def test_nothing_outside_the_layout_is_served_even_to_root(page, key):
    assert get(page, f"/mlops/artifacts/{key}", "root").status_code in (400, 404)


@pytest.mark.parametrize("root", ["file:///", "file://{home}", "file://{parent}"])
def test_a_variable_steering_the_root_at_the_filesystem_serves_nothing(page, root):
    from airflow.models.variable import Variable

    from mlops_provider import settings

    home = os.path.realpath(os.environ["AIRFLOW_HOME"])
    page["mp"].delenv("MLOPS_ARTIFACT_ROOT")
    Variable.set("mlops_artifact_root", root.format(home=home, parent=os.path.dirname(home)))
    settings.clear_cache()
    try:
        for path in ("/mlops/artifacts/etc/passwd", "/mlops/artifacts/runs/x/airflow.cfg", "/mlops/"):
            r = get(page, path, "root")
            assert r.status_code == 500 and "must be a folder of its own" in r.text, (
                root,
                path,
                r.status_code,
            )
            assert "root:x:0:0" not in r.text
    finally:
        Variable.delete("mlops_artifact_root")
        page["mp"].setenv("MLOPS_ARTIFACT_ROOT", page["store"].root)
        settings.clear_cache()


@pytest.mark.parametrize("version", ["²", "1" * 5000, "0", "-1", "v"])
def test_odd_version_numbers_are_404_not_500(page, version):
    r = get(page, f"/mlops/models/{MODEL}/versions/{version}", "root")
    assert r.status_code == 404 and "not a version number" in r.text


def test_odd_versions_in_a_form_are_400(page):
    for version in ("²", "1" * 5000):
        r = post(page, f"/mlops/models/{MODEL}/promote", {"version": version, "reason": "x"})
        assert r.status_code == 400 and "must be a number" in r.text
    assert page["registry"].get_alias(MODEL) == 2


def test_the_form_size_limit_holds_while_reading_a_chunked_body(page):
    def body():
        yield b"reason=" + b"a" * 40_000
        yield b"b" * 40_000  # past 64 KiB, with no Content-Length to check beforehand

    r = post(
        page,
        f"/mlops/models/{MODEL}/promote",
        content=body(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413 and "Form too large" in r.text
    assert page["registry"].get_alias(MODEL) == 2


def test_a_reader_may_not_move_aliases(page):
    r = post(page, f"/mlops/models/{MODEL}/promote", {"version": "1", "reason": "try"}, user="alice")
    assert r.status_code == 403 and "may not edit runs" in r.text
    assert page["registry"].get_alias(MODEL) == 2
