"""The templates ship in the wheel and `mlops templates list|copy` hand them to users."""

from __future__ import annotations

import json
import zipfile

import pytest

from mlops_provider.cli import main, template_files
from tests.conftest import REPO

TEMPLATES = sorted(p.stem for p in (REPO / "provider/mlops_provider/templates").glob("*.py"))


def test_the_repos_dags_are_the_packaged_templates_not_copies():
    dags = sorted((REPO / "dags").glob("*.py"))
    assert [p.stem for p in dags] == TEMPLATES == sorted(template_files())
    for p in dags:
        assert (
            p.is_symlink() and p.resolve() == (REPO / "provider/mlops_provider/templates" / p.name).resolve()
        )


def test_the_built_wheel_contains_every_template(tmp_path):
    from hatchling.builders.wheel import WheelBuilder

    (wheel,) = list(WheelBuilder(str(REPO)).build(directory=str(tmp_path), versions=["standard"]))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name in TEMPLATES:
            entry = f"mlops_provider/templates/{name}.py"
            assert entry in names, entry
            assert zf.read(entry) == (REPO / "provider/mlops_provider/templates" / f"{name}.py").read_bytes()


def test_templates_list_names_each_with_one_line(capsys):
    assert main(["templates", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == TEMPLATES and all(
        t["summary"] and "\n" not in t["summary"] for t in listed
    )


def test_copy_derives_the_dag_id_refuses_to_overwrite_and_says_what_to_edit(tmp_path, capsys):
    assert main(["templates", "copy", "mlops_batch_score", "--to", str(tmp_path), "--model", "churn"]) == 0
    out = capsys.readouterr().out
    target = tmp_path / "churn_batch_score.py"
    text = target.read_text()
    assert 'MODEL_NAME = "churn"' in text and 'DAG_ID = f"{MODEL_NAME}_batch_score"' in text
    assert f"wrote {target}" in out and "MODEL_NAME, DAG_ID, CONN_ID, FEATURES" in out
    target.write_text(text + "\n# my edits\n")
    assert main(["templates", "copy", "mlops_batch_score", "--to", str(tmp_path), "--model", "churn"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err and target.read_text().endswith("# my edits\n")
    assert (
        main(["templates", "copy", "mlops_batch_score", "--to", str(tmp_path), "--model", "churn", "--force"])
        == 0
    )
    assert not target.read_text().endswith("# my edits\n")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["templates", "copy", "nope", "--to", "x"], "no template 'nope'"),
        (
            ["templates", "copy", "mlops_batch_score", "--to", "x", "--model", "../evil"],
            "'--model' parameter",
        ),
        (
            ["templates", "copy", "mlops_batch_score", "--to", "x", "--model", "m" * 101],
            "It has 101 characters",
        ),
    ],
)
def test_copy_refuses_bad_arguments(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x").exists()
