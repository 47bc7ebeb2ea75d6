"""The model-registry pages: an Airflow 3 plugin serving ``/mlops/...`` from the api-server.

Routes (all behind Airflow's authentication; anonymous requests get 401, a bad token 403):

* ``GET  /mlops/``                                      models: champion, versions, latest, last change
* ``GET  /mlops/models/{name}``                         versions, gate results, aliases, alias history,
                                                        promote / roll back forms
* ``GET  /mlops/models/{name}/versions/{version}``     lineage, gate checks, metrics, reports
* ``GET  /mlops/artifacts/{key}``                       a file of the artifact store (key relative
                                                        to the root)
* ``POST /mlops/models/{name}/promote``   (version, reason)
* ``POST /mlops/models/{name}/rollback``  (optional version, reason)

Reads are authorized like writes, per DAG: a version (its page, its artifacts, its reports) is
visible to whoever may read the DAG that produced it (``lineage.dag_id``; a version without one
needs read access to every DAG); the index and model pages list only such versions, and a model
with none is answered as unknown (404). Artifacts are served only from the project's own layout
(``datasets/``, ``runs/``, ``registry/``, ``predictions/``, ``drift/``), each attributed to its DAG
or model the same way.

Authentication reuses Airflow's own FastAPI dependency
(:func:`airflow.api_fastapi.core_api.security.get_user`): an ``Authorization: Bearer <jwt>``
header wins, otherwise the Airflow UI's ``_token`` cookie (set by the UI's login; the api-server's
``JWTRefreshMiddleware`` also validates and refreshes it), so a browser logged into the Airflow UI
is accepted as is. Promote/rollback additionally need the auth manager's permission to edit runs of
the DAG that produced the version, and a same-origin ``Origin`` (or ``Referer``) header, since the
cookie would otherwise ride along on a cross-site form post.

Import cost matters: the api-server, scheduler and workers import plugin modules when they start.
This module imports FastAPI and the standard library only; Airflow's security module, the auth
manager and the registry are imported inside the handlers.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from mlops_provider.core import html as h
from mlops_provider.core.names import CHAMPION
from mlops_provider.plugins import pages
from mlops_provider.urls import UI_ROUTE

try:  # the Task SDK's class; core accepts it too (it checks the class name)
    from airflow.sdk.plugins_manager import AirflowPlugin
except ImportError:  # pragma: no cover - older layouts
    from airflow.plugins_manager import AirflowPlugin

PLUGIN_NAME = "mlops_registry"
URL_PREFIX = "/mlops"
NAV_NAME = "Model registry"
MAX_FORM_BYTES = 64 * 1024
MAX_REASON = 1000
MAX_LISTED_FILES = 300
CHUNK = 1 << 20

#: The top-level folders of the artifact store that the plugin serves (nothing else under the root).
LAYOUT = ("datasets", "runs", "registry", "predictions", "drift")
REPORT_EXTENSIONS = {".html", ".htm", ".json", ".png", ".svg", ".jpg", ".jpeg", ".csv", ".txt", ".md"}

# extension -> (content type, served inline?)
CONTENT_TYPES = {
    ".html": ("text/html; charset=utf-8", True),
    ".htm": ("text/html; charset=utf-8", True),
    ".png": ("image/png", True),
    ".jpg": ("image/jpeg", True),
    ".jpeg": ("image/jpeg", True),
    ".gif": ("image/gif", True),
    ".svg": ("image/svg+xml", True),
    ".json": ("application/json", True),
    ".txt": ("text/plain; charset=utf-8", True),
    ".log": ("text/plain; charset=utf-8", True),
    ".md": ("text/plain; charset=utf-8", True),
    ".csv": ("text/csv; charset=utf-8", False),
    ".parquet": ("application/vnd.apache.parquet", False),
    ".skops": ("application/octet-stream", False),
}

# The plugin's own pages: only the plugin's own static script, styles inline, forms only to this origin.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
#: The pages' one script (theme, links to Airflow's pages): a static file of the package, no data.
REGISTRY_JS = Path(__file__).resolve().parent / "static" / "registry.js"
# Reports from the artifact store are written by DAG code: render them without scripts (sandboxed,
# but same-origin so their images, served by this plugin behind the same cookie, still load).
ARTIFACT_CSP = (
    "sandbox allow-same-origin allow-downloads allow-popups; default-src 'self' data:; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; script-src 'none'; object-src 'none'; frame-ancestors 'self'"
)
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


# --------------------------------------------------------------------------- authentication
async def current_user(request: Request) -> Any:
    """The authenticated Airflow user, exactly as Airflow's own API routes resolve it.

    Bearer token from the ``Authorization`` header first; otherwise the user the api-server's
    ``JWTRefreshMiddleware`` already resolved from the UI's ``_token`` cookie, otherwise that cookie
    itself. Raises 401 (no or expired token) or 403 (invalid token).
    """
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    user = await get_user(request, None, credentials)
    request.state.mlops_user = user.get_name()
    return user


def _authorize_alias_move(user: Any, dag_id: str | None) -> None:
    """Moving an alias changes what production scores with: needs the right to edit runs of the DAG
    that produced the version (SimpleAuthManager: role "user" or above; FAB: can_edit on DAG runs)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    details = DagDetails(id=dag_id) if dag_id else None
    allowed = get_auth_manager().is_authorized_dag(
        method="PUT", access_entity=DagAccessEntity.RUN, details=details, user=user
    )
    if not allowed:
        what = f"runs of DAG {dag_id!r}" if dag_id else "DAG runs"
        raise HTTPException(
            403, f"User {user.get_name()!r} may not edit {what}, so may not move model aliases."
        )


def _require_same_origin(request: Request) -> None:
    """CSRF guard for cookie-authenticated form posts: the Origin (or Referer) must be this site."""
    origin = request.headers.get("origin")
    source = origin if origin and origin != "null" else request.headers.get("referer")
    if not source:
        raise HTTPException(
            403,
            "Refused: a form post to the model registry needs an Origin or Referer header from this site.",
        )
    parts = urlsplit(source)
    allowed = {request.headers.get("host", "").lower()}
    try:
        from airflow.configuration import conf

        base = urlsplit(conf.get("api", "base_url", fallback="") or "")
        if base.netloc:
            allowed.add(base.netloc.lower())
    except Exception:  # no Airflow configuration: the Host header alone decides
        pass
    if not parts.netloc or parts.netloc.lower() not in allowed - {""}:
        raise HTTPException(403, f"Refused: cross-site form post (from {parts.scheme}://{parts.netloc}).")


def _login_url(request: Request) -> str | None:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:
        return None


# --------------------------------------------------------------------------- store and registry
def _store():
    """The artifact store the operators write to, resolved as they resolve it
    (:mod:`mlops_provider.settings`)."""
    from mlops_provider import settings
    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.hooks.artifacts import ArtifactStoreHook

    try:
        with settings.metadata_db():
            return ArtifactStoreHook().get_store()
    except InvalidInputError as err:  # e.g. a root steered at the filesystem root: serve nothing
        raise HTTPException(500, f"The model registry is not available: {err}") from err


def _registry(store):
    """The registry backend the operators use (:mod:`mlops_provider.settings`)."""
    from mlops_provider import settings
    from mlops_provider.hooks.registry import get_registry

    with settings.metadata_db():
        return get_registry(None, None, store)


def _registry_call(fn: Callable[[], Any]) -> Any:
    """Run a registry operation, turning its errors into HTTP errors with the registry's message."""
    from mlops_provider.core.errors import CorruptArtifactError, InvalidInputError, NotFoundError
    from mlops_provider.core.storage import StorageError

    try:
        return fn()
    except NotFoundError as err:
        raise HTTPException(404, str(err)) from err
    except InvalidInputError as err:
        raise HTTPException(400, str(err)) from err
    except (CorruptArtifactError, StorageError) as err:
        raise HTTPException(500, str(err)) from err


def _check_model_name(name: str) -> str:
    from mlops_provider.core.names import is_name

    if not is_name(name):
        raise HTTPException(404, f"No model named {h.short(name, 120)!r} (not a valid model name).")
    return name


def check_key(key: str) -> str:
    """A key relative to the artifact root, refusing anything that could leave it (400) or that is
    not a committed artifact (temporaries)."""
    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.names import check_key as core_check_key

    try:
        key = core_check_key(key, "artifact key")
    except InvalidInputError as err:
        raise HTTPException(400, f"Refused: {err}") from err
    if re.match(r"^[A-Za-z]:", key) or any(p.startswith(".") for p in key.split("/")):
        raise HTTPException(400, f"Refused: {key!r} is not a clean artifact key.")
    return key


def run_folder_files(store, lineage: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """Report files under ``runs/<dag_id>/<run_id>/`` (the version's run folder), by task."""
    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.names import run_folder

    dag_id, run_id = lineage.get("dag_id"), lineage.get("run_id")
    try:
        folder = f"runs/{run_folder(dag_id, run_id)}"
    except InvalidInputError:
        return [], None
    return _walk(store, folder), folder


# --------------------------------------------------------------------------- read authorization
class Access:
    """What one signed-in user may read, asked of Airflow's auth manager (cached per request).

    A DAG's artifacts are readable if the auth manager lets the user read that DAG (``GET`` on the
    DAG); what names no DAG needs read access to all DAGs (``is_authorized_dag`` without details).
    """

    def __init__(self, user: Any, auth_manager: Any = None):
        self.user = user
        self._auth = auth_manager
        self._dags: dict[str, bool] = {}
        self._all: bool | None = None

    @property
    def auth(self):
        if self._auth is None:
            from airflow.api_fastapi.app import get_auth_manager

            self._auth = get_auth_manager()
        return self._auth

    def all_dags(self) -> bool:
        if self._all is None:
            self._all = bool(self.auth.is_authorized_dag(method="GET", user=self.user))
        return self._all

    def dags(self, dag_ids: Iterable[str]) -> set[str]:
        """The readable ones of ``dag_ids`` (one batch question for those not asked yet)."""
        wanted = {d for d in dag_ids if isinstance(d, str) and d}
        unknown = wanted - set(self._dags)
        if unknown:
            allowed = set(
                self.auth.filter_authorized_dag_ids(dag_ids=set(unknown), user=self.user, method="GET")
            )
            self._dags.update({d: d in allowed for d in unknown})
        return {d for d in wanted if self._dags[d]}

    def dag(self, dag_id: Any) -> bool:
        if not isinstance(dag_id, str) or not dag_id:
            return self.all_dags()
        return bool(self.dags([dag_id]))

    def version(self, mv: Mapping[str, Any]) -> bool:
        return self.dag((mv.get("lineage") or {}).get("dag_id"))

    def versions(self, versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.dags((v.get("lineage") or {}).get("dag_id") for v in versions)
        return [v for v in versions if self.version(v)]


def visible_model(
    reg, name: str, access: Access
) -> tuple[list[dict[str, Any]], dict[str, dict], list[dict]] | None:
    """(readable versions, their aliases, alias moves between readable versions) or None if the
    user may read no version of ``name``."""
    versions = access.versions([v.to_dict() for v in reg.list_versions(name)])
    if not versions:
        return None
    numbers = {v["version"] for v in versions}
    aliases = {a: rec for a, rec in reg.aliases(name).items() if rec.get("version") in numbers}
    history = [ev.to_dict() for ev in reg.history(name)]
    history = [
        ev
        for ev in history
        if ev.get("version") in numbers
        and (ev.get("previous_version") is None or ev.get("previous_version") in numbers)
    ]
    return versions, aliases, history


def _segment_dag(segment: str, access: Access) -> bool:
    """Whether the DAG whose folder is ``segment`` (a ``path_segment`` of its id) is readable."""
    from mlops_provider.core.names import path_segment

    try:
        # a folder named after its DAG id as is; a hashed one (an id that had to be rewritten) is
        # not the id, so it needs access to every DAG
        exact = path_segment(segment) == segment and not re.fullmatch(r"_.*-[0-9a-f]{12}", segment)
    except ValueError:
        exact = False
    return access.dag(segment) if exact else access.all_dags()


def authorize_key(store, reg, key: str, access: Access) -> None:
    """404 unless ``key`` lies in the served layout and the user may read what it belongs to."""
    from mlops_provider.core.names import check_version, is_name

    parts = key.split("/")
    top = parts[0]
    denied = HTTPException(404, f"No artifact at {key!r} that you may read.")
    if top not in LAYOUT or len(parts) < 3:
        raise denied
    if top == "runs":
        ok = _segment_dag(parts[1], access)
    elif top == "predictions":
        ok = len(parts) >= 4 and is_name(parts[1]) and _segment_dag(parts[2], access)
    elif top == "datasets":
        ok = False
        if len(parts) >= 4 and is_name(parts[1]) and not parts[2].startswith("_"):
            manifest = f"datasets/{parts[1]}/{parts[2]}/manifest.json"
            dag_id = None
            try:
                if store.exists(manifest):
                    dag_id = ((store.read_json(manifest) or {}).get("extra") or {}).get("dag_id")
            except (OSError, ValueError):
                dag_id = None
            ok = access.dag(dag_id)
    elif top == "registry":
        name = parts[1]
        if not is_name(name):
            raise denied
        if len(parts) >= 5 and parts[2] == "versions":
            try:
                mv = reg.get_version(name, check_version(parts[3]))
            except Exception:  # unknown, uncommitted or unreadable version: nothing to show
                raise denied from None
            ok = access.version(mv.to_dict())
        else:
            ok = visible_model(reg, name, access) is not None
    else:  # drift/<model>/...
        ok = is_name(parts[1]) and visible_model(reg, parts[1], access) is not None
    if not ok:
        raise denied


def _walk(store, folder: str, depth: int = 3) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def visit(key: str, rel: str, level: int) -> None:
        try:
            entries = store.fs.ls(store.path(key), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return
        for ent in sorted(entries, key=lambda d: str(d.get("name"))):
            if len(out) >= MAX_LISTED_FILES:
                return
            name = posixpath.basename(str(ent.get("name", "")).rstrip("/"))
            if (
                not name
                or name.startswith(".")
                or str(ent.get("name", "")).rstrip("/") == store.path(key).rstrip("/")
            ):
                continue
            child, child_rel = f"{key}/{name}", f"{rel}/{name}" if rel else name
            if ent.get("type") == "directory":
                if level > 1:
                    visit(child, child_rel, level - 1)
            elif posixpath.splitext(name)[1].lower() in REPORT_EXTENSIONS:
                task, _, inner = child_rel.partition("/")
                size = ent.get("size")
                out.append(
                    {
                        "key": child,
                        "task": task if inner else "",
                        "name": inner or task,
                        "size": size,
                        "size_h": h.human_size(size if isinstance(size, int) else None),
                    }
                )

    visit(folder, "", depth)
    return out


# --------------------------------------------------------------------------- helpers for responses
def _prefix(request: Request) -> str:
    return str(request.scope.get("root_path") or "").rstrip("/")


def _ctx(request: Request, store=None) -> pages.Ctx:
    prefix = _prefix(request)
    ui_root = prefix[: -len(URL_PREFIX)] if prefix.endswith(URL_PREFIX) else ""

    def artifact_url(uri_or_key: Any) -> str | None:
        if store is None or not uri_or_key:
            return None
        try:
            key = store.key_of(str(uri_or_key))
            check_key(key)
        except (ValueError, HTTPException):
            return None
        return f"{prefix}/artifacts/{quote(key)}"

    return pages.Ctx(
        prefix=prefix,
        ui_root=ui_root,
        user=getattr(request.state, "mlops_user", "") or "",
        artifact_url=artifact_url,
        root=getattr(store, "root", "") if store is not None else "",
    )


def _html(body: str, status: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    h = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": PAGE_CSP,
        "X-Frame-Options": "SAMEORIGIN",
        "Cache-Control": "no-store",
    }
    h.update(headers or {})
    return HTMLResponse(body, status_code=status, headers=h)


async def _form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise HTTPException(415, "Send the form as application/x-www-form-urlencoded.")
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, f"Form too large ({declared} bytes, at most {MAX_FORM_BYTES}).")
    body = bytearray()
    async for chunk in request.stream():  # the limit holds while reading, whatever the header says
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, f"Form too large (more than {MAX_FORM_BYTES} bytes).")
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in parsed.items() if v}


def _reason(form: dict[str, str]) -> str:
    reason = " ".join((form.get("reason") or "").split())
    if not reason:
        raise HTTPException(400, "A reason is required to move a model alias.")
    if len(reason) > MAX_REASON:
        raise HTTPException(400, f"The reason is too long ({len(reason)} characters, at most {MAX_REASON}).")
    return reason


def _version_field(form: dict[str, str], required: bool) -> int | None:
    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.names import check_version

    raw = (form.get("version") or "").strip()
    if not raw:
        if required:
            raise HTTPException(400, "A version is required.")
        return None
    try:
        return check_version(raw, "version")
    except InvalidInputError as err:
        raise HTTPException(400, str(err)) from err


def _flash(request: Request) -> str:
    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.names import check_version

    done = request.query_params.get("done")
    try:
        v = check_version(request.query_params.get("v"))
    except InvalidInputError:
        return ""
    if done == "promote":
        return pages.flash_html("ok", f"v{v} is now the champion.")
    if done == "rollback":
        return pages.flash_html("ok", f"Rolled back: v{v} is now the champion.")
    return ""


# --------------------------------------------------------------------------- the app
app = FastAPI(
    title="MLOps model registry",
    description="Model versions, quality gates, lineage and reports of the MLOps provider.",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@app.exception_handler(HTTPException)
async def _html_error(request: Request, exc: HTTPException) -> Response:
    ctx = _ctx(request)
    extra = ""
    if exc.status_code in (401, 403) and not ctx.user:
        login = _login_url(request)
        if login:
            extra = f'<p><a href="{h.escape(login)}">Log in to Airflow</a> and come back.</p>'
    titles = {
        400: "Bad request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        415: "Unsupported form",
        500: "Registry error",
    }
    body = pages.error_page(
        ctx, exc.status_code, titles.get(exc.status_code, "Error"), str(exc.detail), extra
    )
    return _html(body, exc.status_code, dict(exc.headers or {}))


@app.get("/", response_class=HTMLResponse)
def models_index(request: Request, user: Any = Depends(current_user)) -> Response:
    store = _store()
    reg = _registry(store)
    access = Access(user)

    def load() -> list[dict[str, Any]]:
        out = []
        for name in reg.list_models():
            visible = visible_model(reg, name, access)
            if visible is None:
                continue
            versions, aliases, history = visible
            out.append({"name": name, "versions": versions, "aliases": aliases, "history": history})
        return out

    return _html(pages.index_page(_ctx(request, store), _registry_call(load)))


@app.get("/models/{name}", response_class=HTMLResponse)
def model_detail(name: str, request: Request, user: Any = Depends(current_user)) -> Response:
    _check_model_name(name)
    store = _store()
    reg = _registry(store)
    access = Access(user)

    def load():
        visible = visible_model(reg, name, access)
        if visible is None:
            raise HTTPException(404, f"No model named {name!r} in the registry that you may read.")
        return visible

    versions, aliases, history = _registry_call(load)
    page = pages.model_page(
        _ctx(request, store),
        name,
        versions,
        aliases,
        history,
        _flash(request),
        _estimates(store, name, versions),
    )
    return _html(page)


def _estimates(store, name: str, versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The performance estimates of ``name``'s readable versions (none if they cannot be read)."""
    import logging

    from mlops_provider.core.steps.estimate import estimate_history

    readable = {v.get("version") for v in versions}
    try:
        return [h for h in estimate_history(store, name) if h.get("champion_version") in readable]
    except (OSError, ValueError) as err:
        logging.getLogger(__name__).warning("Could not read the performance estimates of %s: %s", name, err)
        return []


@app.get("/models/{name}/versions/{version}", response_class=HTMLResponse)
def version_detail(name: str, version: str, request: Request, user: Any = Depends(current_user)) -> Response:
    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.names import check_version

    _check_model_name(name)
    try:
        number = check_version(version, "version")
    except InvalidInputError:
        raise HTTPException(404, f"{h.short(version, 40)!r} is not a version number.") from None
    store = _store()
    reg = _registry(store)
    access = Access(user)

    def load():
        mv = reg.get_version(name, number).to_dict()
        if not access.version(mv):
            raise HTTPException(404, f"Model {name!r} has no version {number} that you may read.")
        visible = visible_model(reg, name, access)
        versions, aliases, _ = visible if visible is not None else ([mv], {}, [])
        return mv, aliases, versions, reg.read_card(name, number)

    mv, aliases, versions, card = _registry_call(load)
    here = [a for a, rec in aliases.items() if rec.get("version") == number]
    champion = (aliases.get(CHAMPION) or {}).get("version")
    files, folder = run_folder_files(store, mv.get("lineage") or {})
    html_page = pages.version_page(
        _ctx(request, store), mv, here, champion, files, folder, versions, _flash(request), card=card
    )
    return _html(html_page)


@app.get("/static/registry.js")
def registry_js() -> Response:
    """The pages' script: Airflow's theme inside its frame, Airflow's pages opened in Airflow."""
    return Response(
        REGISTRY_JS.read_bytes(),
        media_type="text/javascript",
        headers={**SECURITY_HEADERS, "Cache-Control": "public, max-age=300"},
    )


def _airflow_path(to: str, ui_root: str) -> str | None:
    """``to`` if it is a path of Airflow's UI on this origin (not the registry's, not elsewhere)."""
    if not isinstance(to, str) or not to.startswith("/") or to.startswith("//") or "\\" in to:
        return None
    if any(ord(c) < 0x20 for c in to) or to.startswith(URL_PREFIX + "/") or to == URL_PREFIX:
        return None
    if ui_root and not to.startswith(ui_root + "/"):
        return None
    return to


@app.get("/open", response_class=HTMLResponse)
def open_in_airflow(request: Request, to: str = "", user: Any = Depends(current_user)) -> Response:
    """Open a page of Airflow's UI from a report: in the whole window, not inside the registry's
    frame (reports are sandboxed without scripts; this page's script does it)."""
    ctx = _ctx(request)
    path = _airflow_path(to, ctx.ui_root)
    if path is None:
        raise HTTPException(
            400, f"'to' must be a path of Airflow's UI on this server; got {h.short(to, 80)!r}."
        )
    return _html(pages.open_page(ctx, path))


@app.get("/datasets/{name}/{sha}", response_class=HTMLResponse)
def dataset_detail(name: str, sha: str, request: Request, user: Any = Depends(current_user)) -> Response:
    """A snapshot's page: its manifest, schema, source, the versions trained or judged on it."""
    from mlops_provider.core.names import is_name

    if not is_name(name) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise HTTPException(404, f"No snapshot {h.short(name, 60)!r} / {h.short(sha, 70)!r}.")
    store = _store()
    reg = _registry(store)
    access = Access(user)
    folder = f"datasets/{name}/{sha}"

    def load():
        authorize_key(store, reg, f"{folder}/manifest.json", access)
        if not store.exists(f"{folder}/manifest.json"):
            raise HTTPException(404, f"No snapshot at {store.uri(folder)}.")
        manifest = store.read_json(f"{folder}/manifest.json") or {}
        uri = store.uri(folder)
        used: list[dict[str, Any]] = []
        for model in reg.list_models():
            visible = visible_model(reg, model, access)
            for mv in (visible or ([], {}, []))[0]:
                lin = mv.get("lineage") or {}
                for role, ds in (
                    ("training", lin.get("train_dataset")),
                    ("evaluation", lin.get("eval_dataset") or (mv.get("verdict") or {}).get("eval_dataset")),
                ):
                    if isinstance(ds, dict) and (
                        ds.get("sha256") == sha and str(ds.get("uri", "")).rstrip("/") == uri.rstrip("/")
                    ):
                        used.append({"model": model, "version": mv["version"], "role": role})
        return manifest, used

    manifest, used = _registry_call(load)
    return _html(pages.dataset_page(_ctx(request, store), manifest, used))


@app.get("/artifacts/{key:path}")
def artifact(key: str, request: Request, user: Any = Depends(current_user)) -> Response:
    check_key(key)
    store = _store()
    _registry_call(lambda: authorize_key(store, _registry(store), key, Access(user)))
    if store.is_local:
        real = os.path.realpath(store.path(key))
        root = os.path.realpath(store.root_path)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            raise HTTPException(403, f"Refused: {key!r} resolves outside the artifact root.")
    try:
        found = store.exists(key) and not store.fs.isdir(store.path(key))
    except OSError as err:
        raise HTTPException(500, f"Could not read {store.uri(key)}: {err}") from err
    if not found:
        raise HTTPException(404, f"No artifact at {store.uri(key)}.")
    name = posixpath.basename(key)
    ext = posixpath.splitext(name)[1].lower()
    ctype, inline = CONTENT_TYPES.get(ext, ("application/octet-stream", False))
    headers = {**SECURITY_HEADERS, "Cache-Control": "private, no-cache"}
    if ctype.startswith(("text/html", "image/svg")):
        headers["Content-Security-Policy"] = ARTIFACT_CSP
    ascii_name = re.sub(r"[^A-Za-z0-9._+-]", "_", name) or "artifact"
    disposition = "inline" if inline else "attachment"
    headers["Content-Disposition"] = (
        f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    )
    try:
        headers["Content-Length"] = str(store.size(key))
    except (OSError, ValueError, TypeError):
        pass

    def chunks() -> Iterator[bytes]:
        with store.open_read(key) as f:
            while True:
                block = f.read(CHUNK)
                if not block:
                    return
                yield block

    return StreamingResponse(chunks(), media_type=ctype, headers=headers)


@app.post("/models/{name}/promote")
async def promote(name: str, request: Request, user: Any = Depends(current_user)) -> Response:
    _check_model_name(name)
    _require_same_origin(request)
    form = await _form(request)
    version = _version_field(form, required=True)
    reason = _reason(form)

    def work():
        reg = _registry(_store())
        mv = reg.get_version(name, version)
        _authorize_alias_move(user, (mv.lineage or {}).get("dag_id"))
        return reg.promote(name, version, actor=user.get_name(), reason=reason)

    event = await run_in_threadpool(_registry_call, work)
    return RedirectResponse(
        f"{_prefix(request)}/models/{quote(name, safe='')}?done=promote&v={event.version}", 303
    )


@app.post("/models/{name}/rollback")
async def rollback(name: str, request: Request, user: Any = Depends(current_user)) -> Response:
    _check_model_name(name)
    _require_same_origin(request)
    form = await _form(request)
    version = _version_field(form, required=False)
    reason = _reason(form)

    def work():
        from mlops_provider.core.errors import NotFoundError

        reg = _registry(_store())
        current = reg.get_alias(name)
        if current is None:
            raise HTTPException(409, f"Model {name!r} has no champion to roll back.")
        target = reg.get_version(name, version if version is not None else current)
        _authorize_alias_move(user, (target.lineage or {}).get("dag_id"))
        try:
            return reg.rollback(name, actor=user.get_name(), reason=reason, to_version=version)
        except NotFoundError as err:  # no earlier champion to go back to
            raise HTTPException(409, str(err)) from err

    event = await run_in_threadpool(_registry_call, work)
    return RedirectResponse(
        f"{_prefix(request)}/models/{quote(name, safe='')}?done=rollback&v={event.version}", 303
    )


# --------------------------------------------------------------------------- the plugin
class TrailingSlashRedirect:
    """ASGI middleware on Airflow's root app: ``/mlops`` (no slash; the sub-app is mounted at
    ``/mlops/``) redirects to ``/mlops/`` with its query string, instead of the UI's 404."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "http" and scope.get("path") == URL_PREFIX:
            query = scope.get("query_string", b"").decode("latin-1")
            location = f"{scope.get('root_path', '')}{URL_PREFIX}/" + (f"?{query}" if query else "")
            await send(
                {
                    "type": "http.response.start",
                    "status": 308,
                    "headers": [(b"location", location.encode("latin-1")), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


class MlopsRegistryPlugin(AirflowPlugin):
    """Model registry pages on the api-server, with a "Model registry" entry in the Browse menu."""

    name = PLUGIN_NAME
    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "MLOps model registry"}]
    fastapi_root_middlewares = [
        {"middleware": TrailingSlashRedirect, "args": [], "kwargs": {}, "name": "MLOps /mlops -> /mlops/"}
    ]
    external_views = [
        {
            "name": NAV_NAME,
            # relative: the UI resolves it against its <base href> (the api base_url), so this also
            # works when Airflow is served under a path prefix
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",
            # rendered inside Airflow's UI (its navigation, its theme) at /plugin/mlops; the path
            # after it is the page shown in the frame, so /plugin/mlops/mlops/models/x deep-links
            "url_route": UI_ROUTE,
        }
    ]
