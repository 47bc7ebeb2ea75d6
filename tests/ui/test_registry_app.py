"""The registry plugin's FastAPI app in-process (TestClient), mounted at /mlops like the api-server
does, authenticated by real JWTs from Airflow's SimpleAuthManager, on a real registry."""

from __future__ import annotations

import html
import io
import os
import re
import secrets
from urllib.parse import quote

import pytest

from tests.ui.registry_data import DAG_ID, ESTIMATOR_XSS, MODEL, RUN_IDS

ORIGIN = "http://testserver"


@pytest.fixture(scope="module")
def env(airflow_db, registry_info):
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from mlops_provider.core.registry import ModelRegistry
    from mlops_provider.core.storage import ArtifactStore
    from mlops_provider.plugins.registry_view import URL_PREFIX, app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_ARTIFACT_ROOT", registry_info["root"])
        mp.delenv("MLOPS_ARTIFACT_CONN_ID", raising=False)
        mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", secrets.token_hex(32))
        auth = create_auth_manager()
        auth.init()
        server = FastAPI()
        server.mount(URL_PREFIX, app)
        store = ArtifactStore(registry_info["root"])
        with TestClient(server, base_url=ORIGIN) as client:
            yield {
                "client": client,
                "admin": auth.generate_jwt(SimpleAuthManagerUser(username="alice", role="admin")),
                "viewer": auth.generate_jwt(SimpleAuthManagerUser(username="victor", role="viewer")),
                "store": store,
                "registry": ModelRegistry(store),
                "info": registry_info,
            }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get(env, path: str, token: str | None = "admin", **kw):
    headers = bearer(env[token]) if token else {}
    return env["client"].get(path, headers=headers, follow_redirects=False, **kw)


def post(env, path: str, data: dict, token: str | None = "admin", origin: str | None = ORIGIN, **headers):
    h = dict(bearer(env[token])) if token else {}
    if origin:
        h["Origin"] = origin
    h.update(headers)
    return env["client"].post(path, data=data, headers=h, follow_redirects=False)


def test_anonymous_and_bad_tokens_are_refused(env):
    info = env["info"]
    paths = [
        "/mlops/",
        f"/mlops/models/{MODEL}",
        f"/mlops/models/{MODEL}/versions/2",
        f"/mlops/artifacts/{info['versions'][2]['report_key']}",
        f"/mlops/artifacts/{info['versions'][2]['png_key']}",
    ]
    for path in paths:
        r = get(env, path, token=None)
        assert r.status_code == 401, (path, r.status_code)
        assert "Log in to Airflow" in r.text and "/auth/login?next=" in r.text
        assert "roc_auc" not in r.text and "PNG" not in r.text[:10]
        r = env["client"].get(path, headers=bearer("not-a-jwt"))
        assert r.status_code == 403, (path, r.status_code)
        r = env["client"].get(path, cookies={"_token": "not-a-jwt"})
        assert r.status_code == 403, (path, r.status_code)
    r = post(env, f"/mlops/models/{MODEL}/promote", {"version": "3", "reason": "anonymous"}, token=None)
    assert r.status_code == 401
    assert env["registry"].get_alias(MODEL) == 2 and len(env["registry"].history(MODEL)) == 2


def test_the_ui_cookie_is_accepted_like_a_bearer_token(env):
    r = env["client"].get("/mlops/", cookies={"_token": env["admin"]})
    assert r.status_code == 200 and "signed in as alice" in r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]  # no script runs on these pages
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]


def test_models_index(env):
    r = get(env, "/mlops/")
    assert r.status_code == 200
    page = r.text
    assert f'href="/mlops/models/{MODEL}"' in page
    assert f'href="/mlops/models/{MODEL}/versions/2"><span class="badge champion">v2</span>' in page
    assert '<td class="num">3</td>' in page  # versions
    assert (
        f'href="/mlops/models/{MODEL}/versions/3">v3</a> <span class="badge bad">gate failed</span>' in page
    )
    roc = env["info"]["versions"][2]["metrics"]["roc_auc"]
    assert f"roc_auc {roc:.4f}" in page
    # last champion change: the DAG run that promoted v2, with the gate's reason
    assert html.escape(f"airflow:{DAG_ID}/{RUN_IDS[1]}") in page and "challenger beats champion v1" in page


def test_model_page_versions_gate_aliases_and_history(env):
    r = get(env, f"/mlops/models/{MODEL}")
    assert r.status_code == 200
    page = r.text
    assert page.index('data-version="3"') < page.index('data-version="2"') < page.index('data-version="1"')
    v3_row = page[page.index('data-version="3"') : page.index('data-version="2"')]
    assert "gate failed" in v3_row and "challenger misses absolute threshold(s): roc_auc" in v3_row
    v2_row = page[page.index('data-version="2"') : page.index('data-version="1"')]
    assert "gate passed" in v2_row and '<span class="badge champion">champion</span>' in v2_row
    # the estimator name came from the registry: escaped, never live markup
    assert html.escape(ESTIMATOR_XSS) in page and ESTIMATOR_XSS not in page
    history = page[page.index("<h2>Alias history</h2>") :]
    assert history.count('<tr><td class="when"><time') == 2
    assert html.escape(f"airflow:{DAG_ID}/{RUN_IDS[0]}") in history and "v1 \u2192 v2" in history
    assert (
        'action="/mlops/models/flight_delay/promote"' in page
        and 'action="/mlops/models/flight_delay/rollback"' in page
    )
    assert 'name="reason" required' in page


def test_version_page_lineage_checks_and_reports(env):
    info = env["info"]["versions"][2]
    r = get(env, f"/mlops/models/{MODEL}/versions/2")
    assert r.status_code == 200
    page = r.text
    assert info["train_sha256"] in page and info["model_sha256"] in page
    assert html.escape(info["query"]) in page
    run_href = f"/dags/{DAG_ID}/runs/{quote(RUN_IDS[1], safe='')}"
    assert f'class="airflow-run" href="{html.escape(run_href)}"' in page
    assert "0123456789abcdef0123456789abcdef01234567" in page and "scikit-learn" in page
    # the champion check: threshold, champion, challenger and delta
    v1, v2 = env["info"]["versions"][1]["metrics"]["roc_auc"], info["metrics"]["roc_auc"]
    checks = page[page.index('class="checks"') :]
    checks = checks[: checks.index("</table>")]
    assert (
        f"{v1:.4f}" in checks and f"{v2:.4f}" in checks and f"{v2 - v1:+.4f}" in checks and "&gt;=" in checks
    )
    folder = info["folder"]
    assert f'href="/mlops/artifacts/{quote(folder)}/evaluate/evaluation.html">evaluation (HTML)</a>' in page
    assert f'href="/mlops/artifacts/{quote(folder)}/evaluate/verdict.json">verdict (JSON)</a>' in page
    files = page[page.index('class="run-files"') :]
    for name in ("validation.html", "validation.json", "evaluation.html", "roc.png", "verdict.json"):
        assert f">{name}</a>" in files, name
    assert f'href="/mlops/artifacts/{quote(folder)}/validate/validation.html"' in files
    assert "data-quality report" in files
    assert ":" not in folder.split("/")[-1]  # the run folder is the safe run id


def test_version_page_shows_the_model_card_escaped(env):
    """The card's numbers are the version's recorded metrics; hostile fields stay text."""
    for version, info in env["info"]["versions"].items():
        page = get(env, f"/mlops/models/{MODEL}/versions/{version}").text
        card = page[page.index('id="model-card"') :]
        assert f"Model card: {MODEL} v{version}" in card
        for metric, value in info["metrics"].items():
            cell = str(value) if isinstance(value, int) else f"{value:.4f}"
            assert f"<tr><td>{metric}</td><td>{cell}</td>" in card, metric
        assert ESTIMATOR_XSS not in card and html.escape(ESTIMATOR_XSS) in card
        promoted = "<td>promote</td><td>airflow:" in card
        assert promoted == info["passed"]
    assert "<code>" + html.escape(ESTIMATOR_XSS) + "</code>" in page  # v3's estimator, in the card


def test_unknown_models_and_versions_are_404(env):
    assert get(env, "/mlops/models/nope").status_code == 404
    assert get(env, "/mlops/models/%2e%2e").status_code == 404
    assert get(env, "/mlops/models/a%20b").status_code == 404
    assert get(env, f"/mlops/models/{MODEL}/versions/9").status_code == 404
    r = get(env, f"/mlops/models/{MODEL}/versions/abc")
    assert r.status_code == 404 and "not a version number" in r.text


def test_artifacts_are_served_by_type(env):
    info, store = env["info"]["versions"][2], env["store"]
    r = get(env, f"/mlops/artifacts/{info['report_key']}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert (
        "sandbox" in r.headers["content-security-policy"]
        and "script-src 'none'" in r.headers["content-security-policy"]
    )
    assert (
        r.headers["content-disposition"].startswith("inline")
        and "Evaluation report: flight_delay v2" in r.text
    )
    r = get(env, f"/mlops/artifacts/{info['png_key']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == store.read_bytes(info["png_key"]) and r.content.startswith(b"\x89PNG")
    r = get(env, f"/mlops/artifacts/{info['folder']}/evaluate/verdict.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["passed"] is True
    r = get(env, f"/mlops/artifacts/{info['train_key']}")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    assert r.headers["content-length"] == str(len(r.content)) and r.content == store.read_bytes(
        info["train_key"]
    )
    import pyarrow.parquet as pq

    assert pq.read_table(io.BytesIO(r.content)).num_rows == 600
    r = get(env, f"/mlops/artifacts/registry/{MODEL}/versions/2/model.skops")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-disposition"].startswith("attachment")


def test_artifacts_refuse_keys_outside_the_root(env):
    store = env["store"]
    assert get(env, "/mlops/artifacts/runs/nothing-here.html").status_code == 404
    assert get(env, "/mlops/artifacts/runs").status_code == 404  # a folder is not a file
    for bad in (
        "%2e%2e/%2e%2e/etc/passwd",
        "runs/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "file:%2F%2F%2Fetc%2Fpasswd",
        "runs%5C..%5C..%5Cx",
    ):
        r = get(env, f"/mlops/artifacts/{bad}")
        assert r.status_code == 400, (bad, r.status_code, r.text[-300:])
    # a symlink inside the root pointing outside of it
    os.symlink("/etc", store.path("runs/escape"))
    try:
        r = get(env, "/mlops/artifacts/runs/escape/hostname")
        assert r.status_code == 403 and "outside the artifact root" in r.text
    finally:
        os.unlink(store.path("runs/escape"))


def test_alias_moves_need_reason_same_origin_and_permission(env):
    reg, url = env["registry"], f"/mlops/models/{MODEL}/promote"
    cases = [
        ({"version": "3"}, {}, 400, "reason is required"),
        ({"version": "3", "reason": "   "}, {}, 400, "reason is required"),
        ({"reason": "no version"}, {}, 400, "version is required"),
        ({"version": "x", "reason": "bad"}, {}, 400, "must be a number"),
        ({"version": "3", "reason": "cross-site"}, {"origin": "http://evil.example"}, 403, "cross-site"),
        ({"version": "3", "reason": "no origin"}, {"origin": None}, 403, "Origin or Referer"),
        ({"version": "3", "reason": "viewer"}, {"token": "viewer"}, 403, "may not edit runs"),
        ({"version": "9", "reason": "missing"}, {}, 404, "has no version 9"),
    ]
    for data, kw, status, message in cases:
        r = post(env, url, data, **kw)
        assert r.status_code == status and message in r.text, (data, kw, r.status_code, r.text[-400:])
    r = env["client"].post(
        url, json={"version": 3, "reason": "json"}, headers={**bearer(env["admin"]), "Origin": ORIGIN}
    )
    assert r.status_code == 415
    assert reg.get_alias(MODEL) == 2 and len(reg.history(MODEL)) == 2  # nothing moved


def test_promote_and_rollback_record_the_user_and_reason(env):
    reg = env["registry"]
    reason = "<b>manual</b> override after review"
    r = post(
        env,
        f"/mlops/models/{MODEL}/promote",
        {"version": "3", "reason": reason},
        origin=None,
        Referer=f"{ORIGIN}/mlops/models/{MODEL}",
    )
    assert r.status_code == 303 and r.headers["location"] == f"/mlops/models/{MODEL}?done=promote&v=3"
    assert reg.get_alias(MODEL) == 3
    last = reg.history(MODEL)[-1]
    assert (last.actor, last.reason, last.action, last.previous_version) == ("alice", reason, "promote", 2)
    page = get(env, r.headers["location"]).text
    assert "v3 is now the champion." in page and html.escape(reason) in page and reason not in page
    assert "<b>alice</b>" in page
    r = post(env, f"/mlops/models/{MODEL}/rollback", {"version": "", "reason": "v3 misses the threshold"})
    assert r.status_code == 303 and r.headers["location"].endswith("done=rollback&v=2")
    assert reg.get_alias(MODEL) == 2
    last = reg.history(MODEL)[-1]
    assert (last.actor, last.action, last.version, last.previous_version) == ("alice", "rollback", 2, 3)
    r = post(env, f"/mlops/models/{MODEL}/rollback", {"version": "7", "reason": "missing"})
    assert r.status_code == 404 and reg.get_alias(MODEL) == 2


def test_a_version_without_gate_or_lineage_still_renders(env):
    from sklearn.dummy import DummyClassifier

    from mlops_provider.core.serialization import dump_model

    model = DummyClassifier(strategy="prior").fit([[0], [1]], [0, 1])
    mv, _ = env["registry"].register("bare_model", dump_model(model))
    r = get(env, "/mlops/")
    assert r.status_code == 200 and 'href="/mlops/models/bare_model"' in r.text and "none yet" in r.text
    r = get(env, "/mlops/models/bare_model")
    assert r.status_code == 200 and "no gate" in r.text and "There is no champion to roll back." in r.text
    r = get(env, f"/mlops/models/bare_model/versions/{mv.version}")
    assert r.status_code == 200
    assert "registered without a model-gate verdict" in r.text and "names no DAG run" in r.text
    assert "Promote v1 to champion" in r.text


def test_links_follow_a_base_url_path_prefix(env):
    """With ``[api] base_url = http://host/airflow`` the api-server's root_path is /airflow."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from mlops_provider.plugins.registry_view import app

    server = FastAPI(root_path="/airflow")
    server.mount("/mlops", app)
    with TestClient(server, base_url=ORIGIN) as client:
        r = client.get(f"/airflow/mlops/models/{MODEL}/versions/2", headers=bearer(env["admin"]))
    assert r.status_code == 200
    assert (
        f'href="/airflow/mlops/artifacts/{quote(env["info"]["versions"][2]["folder"])}/evaluate/evaluation.html"'
        in r.text
    )
    assert f'class="airflow-run" href="/airflow/dags/{DAG_ID}/runs/' in r.text
    assert 'href="/airflow/mlops/models/flight_delay"' in r.text and 'href="/airflow/">Airflow' in r.text


def test_a_snapshot_folder_links_its_manifest_and_data_which_resolve(env):
    """Extract records a snapshot as a folder; the artifact server serves files, so the version
    page links the snapshot's manifest and data (both 200), not the folder (a 404)."""
    import pyarrow as pa

    from mlops_provider.core import datasets
    from mlops_provider.plugins import pages
    from mlops_provider.plugins.registry_view import URL_PREFIX, _ctx

    store = env["store"]
    snap = datasets.write_snapshot(store, "ui_snapshot", [pa.table({"x": [1, 2, 3]})], source="test")

    class Request:
        scope = {"root_path": URL_PREFIX}
        state = type("State", (), {"mlops_user": "alice"})()

    card = pages.dataset_card(_ctx(Request(), store), "Training data", {"uri": snap.uri, "rows": 3})
    hrefs = [html.unescape(h) for h in re.findall(r'href="([^"]+)"', card)]
    key = store.key_of(snap.uri)
    assert hrefs == [
        f"/mlops/{quote(key)}",  # the snapshot's page
        f"/mlops/artifacts/{quote(key)}/manifest.json",
        f"/mlops/artifacts/{quote(key)}/data.parquet",
    ]
    for href in hrefs:
        r = get(env, href)
        assert r.status_code == 200, (href, r.status_code, r.text[:200])
    assert get(env, f"/mlops/artifacts/{quote(key)}").status_code == 404  # what the page used to link
    # a URI naming a file still links that file
    file_card = pages.dataset_card(
        _ctx(Request(), store), "Evaluation data", {"uri": f"{snap.uri}/data.parquet"}
    )
    assert f'href="/mlops/artifacts/{quote(key)}/data.parquet"' in file_card


# --------------------------------------------------------------------------- compare, snapshots, frame
def test_model_page_shows_each_versions_window_and_the_champion_on_the_same_window(env):
    from mlops_provider.plugins.charts import comparison

    page = get(env, f"/mlops/models/{MODEL}").text
    rows = {
        v: page[page.index(f'<tr class="{c}" data-version="{v}"') :].split("</tr>", 1)[0]
        for v, c in ((3, "failed"), (2, "passed current"), (1, "passed"))
    }
    # the evaluation window of each version, from its evaluation snapshot (June, July, August 2013)
    for v, month in ((1, "Jun 2013"), (2, "Jul 2013"), (3, "Aug 2013")):
        assert f'<span class="window">{month}</span>' in rows[v], rows[v]
        assert "200 rows" in rows[v]
    assert "first version" in rows[1]
    # v2 was judged against v1 on v2's window: both values and the improvement, as the verdict says
    verdict = env["registry"].get_version(MODEL, 2).verdict
    ch, cm = verdict["metrics"]["challenger"]["roc_auc"], verdict["metrics"]["champion"]["roc_auc"]
    assert f"v1 {cm:.4f} \u2192 {ch:.4f}" in html.unescape(rows[2])
    assert f"({ch - cm:+.4f}" in rows[2]
    c = comparison({"verdict": verdict}, "roc_auc")
    assert c["improvement"] == pytest.approx(ch - cm)
    # the chart: one filled point per version with its window, a hollow champion point where compared
    svg = page[page.index('<svg class="metric-chart"') : page.index("</svg>")]
    points = re.findall(r'class="version-point" data-v="(\d+)" data-window="([^"]+)"', svg)
    assert points == [("1", "Jun 2013"), ("2", "Jul 2013"), ("3", "Aug 2013")]
    assert re.findall(r'class="champion-point" data-v="(\d+)"', svg) == ["2", "3"]
    assert "each on its own evaluation window" in svg


def test_comparison_interval_maps_onto_the_metric_for_both_directions():
    from mlops_provider.plugins.charts import comparison

    def verdict(metric, direction, ch, cm, lo, hi):
        return {
            "verdict": {
                "champion_version": 4,
                "metrics": {"challenger": {metric: ch}, "champion": {metric: cm}},
                "directions": {metric: direction},
                "comparison": {
                    "metric": metric,
                    "challenger": ch,
                    "champion": cm,
                    "improvement": 0,
                    "ci_low": lo,
                    "ci_high": hi,
                    "confidence": 0.95,
                    "method": "delong",
                },
            }
        }

    up = comparison(verdict("roc_auc", "higher", 0.80, 0.78, 0.005, 0.035), "roc_auc")
    assert up["improvement"] == pytest.approx(0.02)
    assert (up["lo"], up["hi"]) == (pytest.approx(0.785), pytest.approx(0.815))  # 0.78 + [0.005, 0.035]
    # rmse: lower is better; an improvement of +[0.1, 0.5] means the challenger is 0.1..0.5 lower
    down = comparison(verdict("rmse", "lower", 9.7, 10.0, 0.1, 0.5), "rmse")
    assert down["improvement"] == pytest.approx(0.3)
    assert (down["lo"], down["hi"]) == (pytest.approx(9.5), pytest.approx(9.9))
    assert comparison({"verdict": {"champion_version": None}}, "rmse") is None


@pytest.mark.parametrize(
    "start, end, label",
    [
        ("2013-06-01T00:00:00+00:00", "2013-07-01T00:00:00+00:00", "Jun 2013"),
        ("2013-12-01 00:00:00+00:00", "2014-01-01 00:00:00+00:00", "Dec 2013"),
        ("2013-06-01T00:00:00+00:00", "2013-06-15T00:00:00+00:00", "2013-06-01 \u2192 2013-06-15"),
        (
            "2013-06-01T06:00:00+00:00",
            "2013-06-02T06:00:00+00:00",
            "2013-06-01T06:00:00+00:00 \u2192 2013-06-02T06:00:00+00:00",
        ),
        (None, None, "-"),
    ],
)
def test_window_labels(start, end, label):
    from mlops_provider.plugins.charts import window_label

    assert window_label(start, end) == label


def test_snapshot_page_from_the_version_page(env):
    info = env["info"]
    snap = info["eval_snapshots"][2]
    page = get(env, f"/mlops/models/{MODEL}/versions/2").text
    link = re.search(r'<a class="dataset-page" href="([^"]+)">snapshot page</a>', page)
    assert link, "the evaluation data card links its snapshot page"
    r = get(env, html.unescape(link.group(1)))
    assert r.status_code == 200, r.text[:300]
    text = r.text
    manifest = env["store"].read_json(env["store"].key_of(snap["uri"]) + "/manifest.json")
    assert manifest["sha256"] == snap["sha256"] and snap["sha256"] in text
    assert "<dt>Rows</dt><dd>200</dd>" in text
    schema = text[text.index('class="schema"') :].split("</table>", 1)[0]
    assert re.findall(r"<td><code>([^<]+)</code></td>", schema) == [c["name"] for c in manifest["columns"]]
    used = text[text.index('class="used-by"') :].split("</table>", 1)[0]
    assert re.findall(r"versions/(\d+)\">v\d+</a></td><td>(\w+)</td>", used) == [("2", "evaluation")]
    assert "Jul 2013" in text and html.escape(manifest["query"]) in text
    for name in ("manifest.json", "data.parquet"):
        href = f"/mlops/artifacts/{quote(env['store'].key_of(snap['uri']))}/{name}"
        assert f'href="{href}"' in text and get(env, href).status_code == 200


def test_snapshot_page_refuses_odd_names_and_unknown_snapshots(env):
    sha = env["info"]["eval_snapshots"][1]["sha256"]
    assert get(env, f"/mlops/datasets/flight_delay_eval/{sha}").status_code == 200
    assert get(env, f"/mlops/datasets/flight_delay_eval/{sha}", token=None).status_code == 401
    for path in (
        f"/mlops/datasets/flight_delay_eval/{'0' * 64}",  # no such snapshot
        "/mlops/datasets/flight_delay_eval/snapshot",  # not a sha256
        f"/mlops/datasets/..%2F..%2Fetc/{sha}",
        f"/mlops/datasets/flight_delay_eval/{sha.upper()}",
    ):
        r = get(env, path)
        assert r.status_code == 404, (path, r.status_code)


def test_open_page_only_opens_airflow_pages_of_this_server(env):
    r = get(env, "/mlops/open", params={"to": f"/dags/{DAG_ID}/runs/{quote(RUN_IDS[0], safe='')}"})
    assert r.status_code == 200
    assert f'id="open-in-airflow" href="/dags/{DAG_ID}/runs/' in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert '<script src="/mlops/static/registry.js"></script>' in r.text
    for bad in ("//evil.example/x", "https://evil.example/", "/mlops/models/x", "dags/x", "/\\evil", "/a\nb"):
        r = get(env, "/mlops/open", params={"to": bad})
        assert r.status_code == 400, (bad, r.status_code)
        assert "evil.example/" not in r.text.split("<main>", 1)[1].split("must be", 1)[0]


def test_the_pages_script_is_served_as_javascript(env):
    from mlops_provider.plugins import registry_view

    r = get(env, "/mlops/static/registry.js", token=None)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.content == registry_view.REGISTRY_JS.read_bytes() and b"data-theme" in r.content
    assert r.headers["x-content-type-options"] == "nosniff"


def test_model_page_shows_estimated_vs_realised_performance(env):
    """Estimates (CBPE) recorded by the monitoring DAG appear next to their realised values; an entry
    of an unknown version is not shown, and text from the store is escaped."""
    from mlops_provider.core.steps.estimate import append_estimate

    def entry(key, version, realised, window_start):
        estimate = {"value": 0.71, "se": 0.004, "lower": 0.702, "upper": 0.718}
        return {
            "window_key": key,
            "model": MODEL,
            "champion_version": version,
            "metric": "accuracy",
            "reference": 0.74,
            "estimate": 0.71,
            "lower": 0.702,
            "upper": 0.718,
            "drop": 0.03,
            "retrain": True,
            "estimated": {"accuracy": estimate},
            "realised": {"accuracy": realised} if realised is not None else None,
            "error": {"accuracy": realised - 0.71} if realised is not None else None,
            "window": {"start": window_start, "end": "<script>x</script>"},
        }

    store = env["store"]
    append_estimate(store, MODEL, entry("aaaaaaaaaaaa", 2, 0.69, "2013-08-01T00:00:00+00:00"))
    append_estimate(store, MODEL, entry("bbbbbbbbbbbb", 2, None, "2013-09-01T00:00:00+00:00"))
    append_estimate(store, MODEL, entry("cccccccccccc", 99, 0.5, "2013-10-01T00:00:00+00:00"))
    try:
        page = get(env, f"/mlops/models/{MODEL}").text
    finally:  # the registry data is shared with other tests
        store.delete(f"drift/{MODEL}/estimates", recursive=True)
    section = page[page.index("<h2>Estimated vs realised performance</h2>") : page.index("<h2>Alias history")]
    assert "2013-08-01" in section and "2013-09-01" in section and "2013-10-01" not in section
    assert "0.6900" in section and "-0.0200" in section and "not yet" in section
    assert "[0.7020, 0.7180]" in section and "retrain requested" in section
    assert "over 1 window(s) with labels: 0.0200" in section
    assert "<script>x" not in section
