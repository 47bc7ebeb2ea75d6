"""The real thing: ``airflow api-server`` with the registry plugin loaded from ./plugins, a real
registry on disk, and headless Chromium logging in through the Airflow UI's login page.

Screenshots land in test-artifacts/ui/ (git-ignored)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import httpx
import pytest

from tests.ui.conftest import SCREENSHOTS
from tests.ui.registry_data import DAG_ID, MODEL, RUN_IDS

WAIT = 30


@pytest.fixture(scope="module")
def server(api_server):
    return api_server


def token(server, user: str = "admin") -> str:
    r = httpx.post(
        f"{server['url']}/auth/token", json={"username": user, "password": server["users"][user]}, timeout=10
    )
    assert r.status_code == 201, r.text
    return r.json()["access_token"]


def test_anonymous_requests_get_401_or_403(server, registry_info):
    url = server["url"]
    report = registry_info["versions"][2]["report_key"]
    for path in (
        "/mlops/",
        f"/mlops/models/{MODEL}",
        f"/mlops/models/{MODEL}/versions/2",
        f"/mlops/artifacts/{report}",
    ):
        r = httpx.get(f"{url}{path}", timeout=10)
        assert r.status_code in (401, 403), (path, r.status_code, r.text[:300])
        assert "Evaluation report" not in r.text and "roc_auc" not in r.text
    r = httpx.post(
        f"{url}/mlops/models/{MODEL}/promote",
        data={"version": "3", "reason": "anon"},
        headers={"Origin": url},
        timeout=10,
    )
    assert r.status_code in (401, 403)
    r = httpx.get(f"{url}/mlops/", headers={"Authorization": "Bearer forged"}, timeout=10)
    assert r.status_code in (401, 403)


def test_the_registry_without_its_trailing_slash_redirects(server):
    url, jwt = server["url"], token(server)
    r = httpx.get(f"{url}/mlops?x=1", headers={"Authorization": f"Bearer {jwt}"}, timeout=10)
    assert r.status_code == 308 and r.headers["location"] == "/mlops/?x=1", (r.status_code, r.headers)
    r = httpx.get(
        f"{url}/mlops", headers={"Authorization": f"Bearer {jwt}"}, timeout=10, follow_redirects=True
    )
    assert r.status_code == 200 and MODEL in r.text
    assert httpx.get(f"{url}/mlopsx", timeout=10).status_code != 308  # only the exact prefix


def test_api_token_works_and_the_plugin_is_registered(server):
    url, jwt = server["url"], token(server)
    r = httpx.get(f"{url}/mlops/", headers={"Authorization": f"Bearer {jwt}"}, timeout=10)
    assert r.status_code == 200 and MODEL in r.text and "signed in as admin" in r.text
    r = httpx.get(f"{url}/api/v2/plugins", headers={"Authorization": f"Bearer {jwt}"}, timeout=10)
    assert r.status_code == 200, r.text
    (plugin,) = [p for p in r.json()["plugins"] if p["name"] == "mlops_registry"]
    assert plugin["fastapi_apps"][0]["url_prefix"] == "/mlops"
    assert plugin["external_views"] == [
        {
            "name": "Model registry",
            "href": "mlops/",
            "destination": "nav",
            "category": "browse",
            "icon": None,
            "icon_dark_mode": None,
            "url_route": "mlops",
            "nav_top_level": False,
        }
    ]
    r = httpx.get(
        f"{url}/api/v2/plugins/importErrors", headers={"Authorization": f"Bearer {jwt}"}, timeout=10
    )
    assert r.status_code == 200, r.text
    ours = [e for e in r.json()["import_errors"] if "mlops" in json.dumps(e)]
    assert ours == [], ours
    # a cross-site form post carrying a valid token is still refused
    r = httpx.post(
        f"{url}/mlops/models/{MODEL}/promote",
        data={"version": "3", "reason": "csrf"},
        headers={"Origin": "http://evil.example"},
        cookies={"_token": jwt},
        timeout=10,
    )
    assert r.status_code == 403 and "cross-site" in r.text


# --------------------------------------------------------------------------- the browser
def wait_for(driver, condition, what: str, timeout: float = WAIT):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout).until(condition)
    except TimeoutException:
        shot = SCREENSHOTS / f"FAILED-{int(time.time())}.png"
        driver.save_screenshot(str(shot))
        pytest.fail(
            f"Timed out after {timeout}s waiting for {what}; at {driver.current_url!r}; screenshot {shot}"
        )


def screenshot(driver, name: str) -> None:
    """A full-page screenshot (the window grown to the page height) in test-artifacts/ui/."""
    height = driver.execute_script(
        "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
    )
    driver.set_window_size(1400, min(max(int(height) + 140, 900), 4000))
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
    driver.set_window_size(1400, 1000)


def by_css(driver, selector: str):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def test_browser_login_browse_promote(server, browser, registry_info):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select

    url, d = server["url"], browser
    v2 = registry_info["versions"][2]

    # 1. not logged in: the registry answers 401 with a link to Airflow's login page
    d.get(f"{url}/mlops/")
    assert "401" in d.find_element(By.TAG_NAME, "h1").text
    d.find_element(By.LINK_TEXT, "Log in to Airflow").click()

    # 2. log in through the Airflow UI's login form; it sends us back to the registry
    user = wait_for(d, ec.visibility_of_element_located((By.NAME, "username")), "the Airflow login form")
    user.send_keys("admin")
    d.find_element(By.NAME, "password").send_keys(server["users"]["admin"])
    screenshot(d, "01-airflow-login")
    d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(d, ec.url_to_be(f"{url}/mlops/"), "the redirect back to /mlops/ after logging in")
    wait_for(d, ec.presence_of_element_located((By.CSS_SELECTOR, "table.models")), "the models table")
    assert any(c["name"] == "_token" for c in d.get_cookies()), d.get_cookies()

    # 3. the models page: the model, its champion, its versions
    assert "signed in as admin" in by_css(d, "header.top").text
    row = by_css(d, "table.models tbody tr")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == MODEL and cells[1] == "v2" and cells[2] == "3", cells
    assert cells[3].startswith("v3") and "gate failed" in cells[3], cells
    assert f"roc_auc {v2['metrics']['roc_auc']:.4f}" in cells[4], cells
    assert f"airflow:{DAG_ID}/{RUN_IDS[1]}" in cells[5], cells
    screenshot(d, "02-models")

    # 4. the model page
    row.find_element(By.LINK_TEXT, MODEL).click()
    wait_for(d, ec.presence_of_element_located((By.CSS_SELECTOR, "table.versions")), "the versions table")
    versions = d.find_elements(By.CSS_SELECTOR, "table.versions tbody tr")
    assert [r.get_attribute("data-version") for r in versions] == ["3", "2", "1"]
    assert "gate failed" in versions[0].text and "champion" in versions[1].text
    assert len(d.find_elements(By.CSS_SELECTOR, "table.history tbody tr")) == 2
    screenshot(d, "03-model")

    # 5. a version: lineage, checks, reports
    versions[1].find_element(By.LINK_TEXT, "v2").click()
    wait_for(d, ec.presence_of_element_located((By.CSS_SELECTOR, "table.checks")), "the gate checks table")
    text = d.find_element(By.TAG_NAME, "main").text
    assert v2["train_sha256"] in text and v2["model_sha256"] in text and v2["query"] in text
    run_link = by_css(d, "a.airflow-run")
    assert run_link.get_attribute("href") == f"{url}/dags/{DAG_ID}/runs/{quote(RUN_IDS[1], safe='')}"
    checks = [r.text for r in d.find_elements(By.CSS_SELECTOR, "table.checks tbody tr")]
    assert len(checks) == 2 and all("passed" in c for c in checks), checks
    files = d.find_element(By.CSS_SELECTOR, "table.run-files").text
    assert "validation.html" in files and "data-quality report" in files
    screenshot(d, "04-version")

    # 6. the evaluation report, served from the artifact store, with its image
    d.find_element(By.LINK_TEXT, "evaluation (HTML)").click()
    wait_for(
        d, ec.text_to_be_present_in_element((By.ID, "title"), f"Evaluation report: {MODEL} v2"), "the report"
    )

    def image_loaded(drv):
        from selenium.common.exceptions import WebDriverException

        try:  # found afresh each time: the node may be replaced while the page settles
            img = drv.find_element(By.ID, "roc")
            return img.get_property("complete") and img.get_property("naturalWidth") == 160 and img
        except WebDriverException:
            return False

    img = wait_for(d, image_loaded, "the report's PNG to load (naturalWidth 160)")
    assert img.get_property("naturalHeight") == 90
    assert "Model gate passed" in d.find_element(By.ID, "verdict").text
    assert d.current_url == f"{url}/mlops/artifacts/{quote(v2['report_key'])}"
    screenshot(d, "05-evaluation-report")

    # 7. the data-quality report of the same run
    d.back()
    wait_for(
        d, ec.presence_of_element_located((By.CSS_SELECTOR, "table.run-files")), "the version page again"
    )
    d.find_element(By.CSS_SELECTOR, "table.run-files").find_element(By.LINK_TEXT, "validation.html").click()
    wait_for(
        d,
        ec.text_to_be_present_in_element((By.ID, "title"), "Data quality report: PASS"),
        "the validation report",
    )

    # 8. promote v3 by hand, with a reason; the history shows who and why
    d.get(f"{url}/mlops/models/{MODEL}")
    form = wait_for(
        d, ec.presence_of_element_located((By.CSS_SELECTOR, "form[action$='/promote']")), "the promote form"
    )
    Select(form.find_element(By.NAME, "version")).select_by_value("3")
    reason = "Browser test: promote v3 by hand after review"
    form.find_element(By.NAME, "reason").send_keys(reason)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(
        d,
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "v3 is now the champion."),
        "the flash",
    )
    first = d.find_element(By.CSS_SELECTOR, "table.history tbody tr")
    assert first.find_element(By.CSS_SELECTOR, "td.actor").text == "admin"
    assert first.find_element(By.CSS_SELECTOR, "td.why").text == reason
    assert "v2 \u2192 v3" in first.text and "promote" in first.text
    champion_row = d.find_element(By.CSS_SELECTOR, "table.versions tbody tr[data-version='3']")
    assert "champion" in champion_row.text
    screenshot(d, "06-promoted")

    # 9. roll back to the previous champion
    form = by_css(d, "form[action$='/rollback']")
    form.find_element(By.NAME, "reason").send_keys("v3 misses the roc_auc threshold")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(
        d, ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), "Rolled back: v2"), "the rollback"
    )
    first = d.find_element(By.CSS_SELECTOR, "table.history tbody tr")
    assert "rollback" in first.text and first.find_element(By.CSS_SELECTOR, "td.actor").text == "admin"

    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore

    reg = ModelRegistry(ArtifactStore(registry_info["root"]))
    assert reg.get_alias(MODEL) == 2
    assert [(e.action, e.actor) for e in reg.history(MODEL)][-2:] == [
        ("promote", "admin"),
        ("rollback", "admin"),
    ]


def test_browser_nav_entry_in_the_airflow_ui(server, browser):
    """The Airflow UI (already logged in above) lists "Model registry" under Browse, linking to /mlops/."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    d = browser
    d.get(f"{server['url']}/")
    browse = wait_for(
        d,
        ec.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Browse'], [title='Browse']")),
        "the Browse menu of the Airflow UI",
        timeout=60,
    )
    browse.click()
    link = wait_for(
        d,
        ec.visibility_of_element_located((By.XPATH, "//a[normalize-space(.)='Model registry']")),
        "the 'Model registry' entry in the Browse menu",
    )
    # the entry opens the registry inside Airflow's UI (the plugin's url_route), not a separate site
    assert link.get_attribute("href") == f"{server['url']}/plugin/mlops"
    screenshot(d, "07-airflow-browse-menu")


def _registry_frame(d, what: str):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    d.switch_to.default_content()
    frame = wait_for(
        d,
        ec.presence_of_element_located((By.CSS_SELECTOR, "iframe[title='Model registry']")),
        what,
        timeout=60,
    )
    d.switch_to.frame(frame)
    return frame


def test_the_registry_renders_inside_airflows_ui(server, browser, registry_info):
    """Browse -> Model registry shows the registry in Airflow's own frame (Airflow's navigation
    around it, its theme, the registry's breadcrumbs); extra links deep-link into that frame; a
    snapshot page resolves from a version page; a run link opens Airflow's run page, not a nested UI."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    from mlops_provider.urls import in_airflow_ui, model_version_url

    url, d = server["url"], browser
    d.get(f"{url}/")
    browse = wait_for(
        d,
        ec.element_to_be_clickable((By.CSS_SELECTOR, "button[aria-label='Browse'], [title='Browse']")),
        "the Browse menu",
        timeout=60,
    )
    browse.click()
    wait_for(
        d, ec.element_to_be_clickable((By.XPATH, "//a[normalize-space(.)='Model registry']")), "the entry"
    ).click()
    wait_for(
        d, lambda drv: drv.current_url.startswith(f"{url}/plugin/mlops"), "Airflow's page of the registry"
    )
    frame = _registry_frame(d, "the registry's frame inside Airflow's UI")
    wait_for(
        d, ec.presence_of_element_located((By.CSS_SELECTOR, "table.models")), "the models table in the frame"
    )
    # the embedded page knows it is framed: Airflow shows the navigation and the user, it keeps crumbs
    assert "framed" in d.find_element(By.TAG_NAME, "html").get_attribute("class")
    assert not d.find_element(By.CSS_SELECTOR, "header.top .brand").is_displayed()
    # Airflow's URL follows the page shown in its frame
    wait_for(
        d,
        lambda drv: drv.execute_script("return window.top.location.pathname") == "/plugin/mlops/mlops/",
        "Airflow's URL to follow the page in its frame",
    )
    d.switch_to.default_content()
    # the embedding page is Airflow's: its navigation is around the frame
    assert d.find_element(By.CSS_SELECTOR, "button[aria-label='Browse'], [title='Browse']").is_displayed()
    assert frame.size["width"] > 800 and frame.size["height"] > 400, frame.size
    screenshot(d, "08-registry-inside-airflow")

    # a deep link, as the register task's "Model version" extra link records it, lands in the frame
    deep = in_airflow_ui(model_version_url(MODEL, 2, url), url)
    assert deep == f"{url}/plugin/mlops/mlops/models/{MODEL}/versions/2"
    d.get(deep)
    _registry_frame(d, "the frame of the deep link")
    wait_for(
        d, ec.presence_of_element_located((By.CSS_SELECTOR, "table.checks")), "the version page in the frame"
    )
    assert d.execute_script("return location.pathname") == f"/mlops/models/{MODEL}/versions/2"
    crumbs = d.find_element(By.CSS_SELECTOR, "header.top .crumbs").text
    assert crumbs.split(" / ") == ["Models", MODEL, "v2"], crumbs

    # the evaluation data's snapshot page, from the version page
    d.find_element(By.CSS_SELECTOR, "a.dataset-page").click()
    wait_for(d, ec.presence_of_element_located((By.CSS_SELECTOR, "table.used-by")), "the snapshot page")
    snap = registry_info["eval_snapshots"][2]
    assert snap["sha256"] in d.find_element(By.TAG_NAME, "main").text
    used = d.find_element(By.CSS_SELECTOR, "table.used-by tbody").text
    assert MODEL in used and "v2" in used and "evaluation" in used
    d.switch_to.default_content()
    # Airflow's URL follows the frame, so the page can be bookmarked and shared
    wait_for(
        d,
        lambda drv: drv.current_url.startswith(f"{url}/plugin/mlops/mlops/datasets/flight_delay_eval/"),
        "Airflow's URL to follow the frame",
    )
    screenshot(d, "09-snapshot-page-inside-airflow")

    # the model page in Airflow's dark theme: the frame follows Airflow's choice
    d.get(f"{url}/plugin/mlops/mlops/models/{MODEL}")
    _registry_frame(d, "the model page's frame")
    wait_for(d, ec.presence_of_element_located((By.CSS_SELECTOR, "svg#metric-chart")), "the metric chart")
    windows = [
        w.get_attribute("data-window")
        for w in d.find_elements(By.CSS_SELECTOR, "svg#metric-chart g.version-point")
    ]
    assert windows == ["Jun 2013", "Jul 2013", "Aug 2013"], windows
    evaluated = [c.text for c in d.find_elements(By.CSS_SELECTOR, "table.versions td.evaluated")]
    assert [t.splitlines()[0] for t in evaluated] == ["Aug 2013", "Jul 2013", "Jun 2013"], evaluated
    light = d.execute_script("return getComputedStyle(document.body).backgroundColor")
    d.switch_to.default_content()
    d.execute_script(
        "document.documentElement.classList.remove('light'); document.documentElement.classList.add('dark')"
    )
    _registry_frame(d, "the frame after switching Airflow to dark")
    wait_for(
        d,
        lambda drv: drv.find_element(By.TAG_NAME, "html").get_attribute("data-theme") == "dark",
        "the registry to follow Airflow's dark theme",
    )
    dark = d.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert dark != light, (light, dark)
    d.switch_to.default_content()
    screenshot(d, "10-model-page-dark-inside-airflow")
    d.execute_script(
        "document.documentElement.classList.remove('dark'); document.documentElement.classList.add('light')"
    )

    # a run link inside the frame opens Airflow's run page in Airflow itself, not a UI in the frame
    d.get(deep)
    _registry_frame(d, "the version page again")
    wait_for(d, ec.element_to_be_clickable((By.CSS_SELECTOR, "a.airflow-run")), "the run link").click()
    d.switch_to.default_content()
    wait_for(
        d,
        lambda drv: drv.current_url == f"{url}/dags/{DAG_ID}/runs/{quote(RUN_IDS[1], safe='')}",
        "Airflow to show the run page",
    )
    assert not d.find_elements(By.CSS_SELECTOR, "iframe[title='Model registry']")
    screenshot(d, "11-run-link-opens-in-airflow")
