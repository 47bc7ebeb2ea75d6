"""Names and keys from a hostile trigger: nothing may reach outside the artifact root.

Every name and key that becomes part of a path (model, alias, dataset, version reference, run id,
keys in URIs and event payloads) goes through ``mlops_provider.core.names``; these tests feed the
operators, the core, the CLI and the event parsers values a user who can trigger a DAG could send,
and check the exact refusal, that nothing outside the root was read or written, and that the
champion did not move."""

from __future__ import annotations

import pytest

from mlops_provider.core.errors import InvalidInputError
from tests.helpers import context_for
from tests.security.conftest import MODEL

TRAVERSAL_NAMES = [
    "../../outside",
    "..",
    ".",
    "a/b",
    "/etc",
    "wine\n",
    "wine\x00",
    "wine quality",
    "wïne",
    "-wine",
    "x" * 101,
    "",
]


@pytest.mark.parametrize("name", TRAVERSAL_NAMES)
def test_the_name_rule_refuses_paths_controls_and_overlong_names(name):
    from mlops_provider.core.names import check_name

    with pytest.raises(InvalidInputError, match="'model_name' parameter of somewhere must be a name") as err:
        check_name(name, "model_name", "somewhere")
    assert repr(name)[:60] in str(err.value) or "characters" in str(err.value)


def test_names_up_to_the_dag_tag_limit_pass_and_the_error_names_the_length():
    from mlops_provider.core.names import MAX_NAME, check_name

    assert MAX_NAME == 100 and check_name("w" * 100) == "w" * 100
    with pytest.raises(InvalidInputError, match="It has 110 characters"):
        check_name("w" * 110, "MODEL_NAME")


@pytest.mark.parametrize("model_name", ["../../outside", "wine_quality\n", "a/../b"])
def test_batch_score_refuses_a_traversing_model_name(model_name, sandbox):
    refused_by_batch_score(sandbox, "model_name", model_name=model_name, model_ref="champion")
    assert not (sandbox.root / "predictions").exists()


def refused_by_batch_score(sandbox, parameter: str, **kwargs) -> None:
    """BatchScoreOperator fails at once naming ``parameter``; nothing outside moved, nothing written."""
    from airflow.sdk.exceptions import AirflowFailException

    from mlops_provider.operators.batch_score import BatchScoreOperator

    kwargs.setdefault("model_name", MODEL)
    op = BatchScoreOperator(task_id="score", dataset="datasets/x/y", **kwargs)
    with pytest.raises(AirflowFailException, match=f"'{parameter}' parameter of BatchScoreOperator"):
        op.execute(context_for("score"))
    sandbox.intact()


@pytest.mark.parametrize(
    "ref",
    [
        "../../../../outside/alias-log/champion",
        "@../champion",
        "champion/..",
        "²",
        "1" * 5000,
        "0",
        "-1",
        "cham\npion",
        True,
        3.5,
    ],
)
def test_batch_score_refuses_a_traversing_or_odd_model_ref(ref, sandbox):
    refused_by_batch_score(sandbox, "model_ref", model_ref=ref)


@pytest.mark.parametrize(
    "output_key", ["../outside/preds", "/tmp/x", "predictions/../../x", "a\nb", "s3://bucket/x"]
)
def test_batch_score_refuses_an_output_key_outside_the_root(output_key, sandbox):
    refused_by_batch_score(sandbox, "output_key", output_key=output_key)


@pytest.mark.parametrize("uri", ["{root}/../x", "{root}/a/../../x", "{root}/./x", "../x", "{root}/a\n"])
def test_the_store_refuses_keys_and_uris_that_leave_the_root(uri, sandbox):
    store = sandbox.store
    uri = uri.format(root=sandbox.root_uri)
    with pytest.raises(InvalidInputError, match="refused"):
        store.key_of(uri)
    sandbox.intact()


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a//b", "a\\b", "a\x7fb", "./x"])
def test_every_store_operation_refuses_a_bad_key(key, sandbox):
    store = sandbox.store
    for call in (
        lambda: store.write_bytes(key, b"x"),
        lambda: store.read_bytes(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.list_dir(key),
        lambda: store.create_exclusive(key, b"x"),
    ):
        with pytest.raises(InvalidInputError, match="must be a key inside the artifact root"):
            call()
    sandbox.intact()


def test_the_registry_refuses_traversal_in_every_reference(sandbox):
    reg = sandbox.registry
    cases = [
        (lambda: reg.resolve(MODEL, "../../outside/alias-log/champion"), "'model_ref'"),
        (lambda: reg.get_version(MODEL, "1/../../x"), "'version'"),
        (lambda: reg.alias_record("../outside"), "'model_name'"),
        (lambda: reg.set_alias(MODEL, 1, alias="../champion", reason="x"), "'alias'"),
        (lambda: reg.promote(MODEL, 1, alias="champion\n", actor="t", reason="x"), "'alias'"),
        (lambda: reg.register("../outside", b"PK"), "'model_name'"),
        (lambda: reg.list_versions("wine_quality\n"), "'model_name'"),
    ]
    for call, parameter in cases:
        with pytest.raises(InvalidInputError, match=parameter):
            call()
    sandbox.intact()


def test_listings_skip_entries_a_hostile_writer_named_oddly(sandbox):
    for odd in ("..bad", "bad name", "²"):
        (sandbox.root / "registry" / odd).mkdir()
        (sandbox.root / "registry" / MODEL / "versions" / odd).mkdir()
    assert sandbox.registry.list_models() == [MODEL]
    assert [v.version for v in sandbox.registry.list_versions(MODEL)] == [1]


def test_a_dot_dot_run_id_gets_a_folder_of_its_own_per_dag():
    from mlops_provider.core.names import run_folder

    a, b = run_folder("dag_a", ".."), run_folder("dag_b", "..")
    assert a.split("/")[0] == "dag_a" and b.split("/")[0] == "dag_b"
    assert all(part not in (".", "..") for part in (a + "/" + b).split("/"))
    assert run_folder("dag_a", "..") != run_folder("dag_a", ".") != run_folder("dag_a", "_..")
    assert run_folder("..", "r").split("/")[0] not in (".", "..")


def test_an_operator_run_folder_with_a_dot_dot_run_id_stays_inside(sandbox):
    from mlops_provider.operators.train import TrainModelOperator

    op = TrainModelOperator(task_id="train", dataset="x", label="y", estimator="sklearn.linear_model.Ridge")
    folders = {op.run_folder(context_for("train", "..", dag_id=d)) for d in ("dag_a", "dag_b")}
    assert len(folders) == 2 and all(f.startswith("runs/dag_") for f in folders)
    for f in folders:
        assert sandbox.store.path(f).startswith(str(sandbox.root) + "/runs/")


@pytest.mark.parametrize(
    "payload, key",
    [
        ({"model": "../x"}, "'model'"),
        ({"model": "wine_quality\n"}, "'model'"),
        ({"report_uri": "{root}/../outside/secret.txt"}, "'report_uri'"),
        ({"report_uri": "file:///etc/passwd"}, "'report_uri'"),
        ({"window": {"start": "2013-01-01", "end": "../x"}}, "'window.end'"),
    ],
)
def test_retrain_requests_with_hostile_keys_are_refused(payload, key, sandbox):
    from mlops_provider.core.events import RetrainRequest, parse_triggering_events

    extra = RetrainRequest(model=MODEL, reason="manual").to_extra()
    extra.update(
        {k: (v.format(root=sandbox.root_uri) if isinstance(v, str) else v) for k, v in payload.items()}
    )
    with pytest.raises(InvalidInputError, match=key):
        parse_triggering_events([{"extra": extra}], sandbox.root_uri)


@pytest.mark.parametrize("mtime", [1e20, -1e20, 2**70])
def test_an_overflowing_mtime_is_our_validation_error(mtime, sandbox):
    from mlops_provider.core.events import NewDataEvent

    extra = {
        "from_trigger": True,
        "payload": {"uri": f"{sandbox.root_uri}/landing/x.parquet", "size": 1, "mtime": mtime},
    }
    with pytest.raises(
        InvalidInputError, match="'mtime' key of the new-data event payload must be epoch seconds"
    ):
        NewDataEvent.parse(extra, artifact_root=sandbox.root_uri)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["models", "show", "../outside"], "'NAME' parameter"),
        (["models", "show", "wine_quality\n"], "'NAME' parameter"),
        (["models", "promote", MODEL, "²", "--reason", "x"], "VERSION must be a version number"),
        (["models", "promote", MODEL, "1" * 5000, "--reason", "x"], "VERSION must be a version number"),
        (["models", "promote", MODEL, "1", "--reason", "x", "--alias", "../champion"], "'--alias' parameter"),
    ],
)
def test_the_cli_refuses_hostile_arguments(argv, message, sandbox, capsys):
    from mlops_provider.cli import main

    assert main(["--root", sandbox.root_uri, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlops: error:") and message in err
    sandbox.intact()


def test_a_template_with_an_overlong_model_name_fails_naming_it(tmp_path):
    """Parsing a copied template whose MODEL_NAME is 110 characters: the import error names MODEL_NAME."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO

    src = (REPO / "dags" / "mlops_retrain_scheduled.py").read_text()
    assert 'MODEL_NAME = "flights_delay"' in src
    (tmp_path / "copied.py").write_text(
        src.replace('MODEL_NAME = "flights_delay"', f'MODEL_NAME = "{"m" * 110}"')
    )
    bag = DagBag(dag_folder=str(tmp_path))
    (error,) = bag.import_errors.values()
    assert "'MODEL_NAME' parameter of the configuration block must be a name" in error
    assert "It has 110 characters" in error and "tag cannot be longer" not in error
