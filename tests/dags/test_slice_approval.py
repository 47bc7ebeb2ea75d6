"""The scheduled template with SLICE_GATES and REQUIRE_APPROVAL set: the gates reach check_config
and evaluate, and the approver's body shows the verdict and the per-slice table."""

from __future__ import annotations

from pathlib import Path

DAGS = Path(__file__).resolve().parents[2] / "dags"
GATES = [{"column": "carrier", "metric": "roc_auc", "min": 0.6, "max_gap": 0.08, "min_rows": 300}]


def test_approver_sees_the_slice_table():
    from mlops_provider.core.slices import markdown_table

    src = (DAGS / "mlops_retrain_scheduled.py").read_text()
    assert src.count("REQUIRE_APPROVAL = False") == 1 and src.count("SLICE_GATES = []") == 1
    src = src.replace("REQUIRE_APPROVAL = False", "REQUIRE_APPROVAL = True")
    src = src.replace("SLICE_GATES = []", f"SLICE_GATES = {GATES!r}")
    namespace: dict = {"__name__": "slice_approval_variant"}
    exec(compile(src, "slice_approval_variant.py", "exec"), namespace)
    dag = namespace["dag"]
    assert dag.get_task("check_config").slice_gates == GATES
    assert dag.get_task("evaluate").slice_gates == GATES
    table = markdown_table(
        [
            {
                "label": "roc_auc by carrier",
                "column": "carrier",
                "min_rows": 300,
                "slices": [
                    {
                        "value": "UA",
                        "rows": 4885,
                        "challenger": 0.7311,
                        "champion": 0.6982,
                        "status": "gated",
                    },
                    {
                        "value": "WN",
                        "rows": 1008,
                        "challenger": 0.1943,
                        "champion": 0.7694,
                        "status": "gated",
                    },
                    {
                        "value": "FL",
                        "rows": 241,
                        "challenger": 0.69,
                        "champion": 0.62,
                        "status": "too few rows",
                    },
                ],
            }
        ]
    )
    evaluation = {"summary": "Model gate FAILED for 'flights_delay': ...", "slice_table": table}

    class TI:
        def xcom_pull(self, task_ids=None, **_):
            assert task_ids == "evaluate"
            return evaluation

    task = dag.get_task("approve_promotion")
    body = task.render_template(task.body, {"ti": TI()})
    assert body.startswith(evaluation["summary"])
    assert "| WN | 1,008 | 0.1943 | 0.7694 | gated |" in body
    assert "| FL | 241 | 0.6900 | 0.6200 | too few rows |" in body
