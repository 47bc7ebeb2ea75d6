"""``mlops``: look at the model registry and move its aliases by hand.

::

    mlops [--root URI] models list [--json]
    mlops [--root URI] models show NAME [--version N] [--metric M ...] [--json]
    mlops [--root URI] models promote NAME VERSION --reason TEXT [--alias champion] [--actor WHO] [--json]
    mlops [--root URI] models rollback NAME [--to VERSION] --reason TEXT [--alias champion]
                                            [--actor WHO] [--json]
    mlops [--root URI] maintenance sweep [--older-than SECONDS] [--dry-run] [--json]
    mlops templates list [--json]
    mlops templates copy NAME --to DIR [--model MODEL_NAME] [--force] [--json]

``--root`` defaults to ``MLOPS_ARTIFACT_ROOT``, then the Airflow Variable ``mlops_artifact_root``,
then ``file://$AIRFLOW_HOME/mlops`` (see :func:`mlops_provider.hooks.artifacts.resolve_root`).

Human output is aligned text tables; ``--json`` prints one JSON document on stdout. Errors print
one line ``mlops: error: ...`` on stderr and exit with status 2; success exits 0.

Only the standard library is imported at module level: the registry (and, when ``--root`` is not
given, Airflow for the Variable lookup) is imported when a command runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from mlops_provider.core.html import aligned
from mlops_provider.core.names import CHAMPION as DEFAULT_ALIAS

PROG = "mlops"
EXIT_OK = 0
EXIT_ERROR = 2


class CliError(Exception):
    """An error to report as ``mlops: error: <message>`` with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line: ``mlops: error: ... (see '... --help')``."""

    def error(self, message: str):  # type: ignore[override]
        raise CliError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------- helpers
def default_actor() -> str:
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or os.environ.get("USERNAME")
    if not user:
        try:
            import getpass

            user = getpass.getuser()
        except Exception:  # no passwd entry (some containers)
            user = "unknown"
    try:
        host = socket.gethostname() or "localhost"
    except OSError:
        host = "localhost"
    return f"cli:{user}@{host}"


def _clean(value: Any) -> str:
    """One printable line for a table cell."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return aligned(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return "".join(c if c.isprintable() else " " for c in text) or "-"


def _truncate(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: max(width - 3, 1)] + "..."


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], max_widths: dict[str, int] | None = None
) -> str:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    max_widths = max_widths or {}
    cells = [
        [_truncate(_clean(v), max_widths.get(h)) for h, v in zip(headers, row, strict=True)] for row in rows
    ]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = []
    for row in [list(headers), *cells]:
        line = "  ".join(c.ljust(widths[i]) if i < len(row) - 1 else c for i, c in enumerate(row))
        lines.append(line.rstrip())
    return "\n".join(lines)


def _when(value: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM:SS`` in UTC (as stored when it cannot be parsed)."""
    if not value:
        return "-"
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _short_sha(sha: Any) -> str:
    return str(sha)[:12] if sha else "-"


def _key_metric_names(mv) -> list[str]:
    """The metric(s) that decide for this version: the gate's compare metric and threshold metrics."""
    verdict = mv.verdict or {}
    names: list[str] = []
    if verdict.get("compare_metric"):
        names.append(verdict["compare_metric"])
    for check in verdict.get("checks") or []:
        metric = check.get("metric") if isinstance(check, dict) else None
        if metric and metric not in names:
            names.append(metric)
    if not names:
        names = [m for m in ("roc_auc", "rmse") if m in (mv.metrics or {})][:1]
    if not names and mv.metrics:
        names = [sorted(mv.metrics)[0]]
    return [n for n in names if n in (mv.metrics or {})]


def key_metrics(mv) -> dict[str, Any]:
    return {n: mv.metrics[n] for n in _key_metric_names(mv)}


def _metrics_text(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_clean(v)}" for k, v in metrics.items()) or "-"


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True, default=str))


# --------------------------------------------------------------------------- registry access
def _open_registry(args):
    from mlops_provider.hooks.artifacts import ArtifactStoreHook, resolve_root_and_source
    from mlops_provider.hooks.registry import get_registry

    try:
        root, args.root_source = resolve_root_and_source(getattr(args, "root", None), "--root")
    except ValueError as err:
        raise CliError(str(err)) from err
    try:
        # s3:// and gs:// roots go through the Airflow connection (--conn-id, MLOPS_ARTIFACT_CONN_ID)
        store = ArtifactStoreHook(root, getattr(args, "conn_id", None)).get_store()
    except (ImportError, ValueError) as err:
        raise CliError(
            f"cannot open artifact root {root!r}: {err} "
            "(for s3:// or gs:// install the 'amazon' or 'google' extra)"
        ) from err
    try:
        # the backend the DAGs use: --registry / $MLOPS_REGISTRY (artifacts, mlflow, sagemaker, vertex)
        registry = get_registry(
            getattr(args, "registry", None), getattr(args, "registry_conn_id", None), store
        )
    except (ImportError, ValueError) as err:
        raise CliError(f"cannot open the model registry: {err}") from err
    registry.root_source = args.root_source
    return registry


def _check_model(registry, name: str) -> None:
    from mlops_provider.core.names import check_name

    check_name(name, "NAME", f"'{PROG} models'")
    if name not in registry.list_models():
        known = ", ".join(registry.list_models()) or "none"
        raise CliError(
            f"no model {name!r} in the registry at {registry.store.root}, chosen by "
            f"{getattr(registry, 'root_source', None) or 'the configuration'} (models: {known})"
        )


def _reason(text: str | None) -> str:
    reason = (text or "").strip()
    if not reason:
        raise CliError(
            "a non-empty --reason is required to move an alias (it is recorded in the alias history)"
        )
    return reason


def _check_alias(alias: str) -> str:
    from mlops_provider.core.names import check_name

    return check_name(alias, "--alias", f"'{PROG} models'")


def _version_number(value: Any, what: str = "VERSION") -> int:
    from mlops_provider.core.errors import InvalidInputError
    from mlops_provider.core.names import check_version

    try:
        return check_version(str(value), what)
    except InvalidInputError:
        raise CliError(f"{what} must be a version number such as 3 (got {str(value)[:40]!r})") from None


# --------------------------------------------------------------------------- commands
def cmd_list(args) -> int:
    registry = _open_registry(args)
    models, problems = [], []
    for name in registry.list_models():
        try:
            versions = registry.list_versions(name)
            aliases = registry.aliases(name)
            champ = aliases.get(DEFAULT_ALIAS)
            champ_mv = None
            if champ is not None:
                champ_mv = next((v for v in versions if v.version == int(champ["version"])), None)
        except Exception as err:  # one unreadable model must not hide the others
            problems.append(f"model {name!r}: {err}")
            continue
        models.append(
            {
                "name": name,
                "versions": len(versions),
                "latest_version": versions[-1].version if versions else None,
                "champion_version": int(champ["version"]) if champ else None,
                "champion_metrics": key_metrics(champ_mv) if champ_mv else {},
                "promoted_at": champ.get("updated_at") if champ else None,
                "promoted_by": champ.get("actor") if champ else None,
                "aliases": {a: int(rec["version"]) for a, rec in sorted(aliases.items())},
            }
        )
    if args.json:
        _print_json(
            {
                "root": registry.store.root,
                "root_source": args.root_source,
                "models": models,
                "errors": problems,
            }
        )
    elif not models and not problems:
        print(
            f"No models registered under {registry.store.root} (that root was chosen by {args.root_source})"
        )
    else:
        rows = [
            (
                m["name"],
                m["versions"],
                f"v{m['champion_version']}" if m["champion_version"] else None,
                f"v{m['latest_version']}" if m["latest_version"] else None,
                _metrics_text(m["champion_metrics"]) if m["champion_version"] else None,
                _when(m["promoted_at"]),
                m["promoted_by"],
            )
            for m in models
        ]
        print(
            format_table(
                ("MODEL", "VERSIONS", "CHAMPION", "LATEST", "CHAMPION METRICS", "PROMOTED (UTC)", "BY"), rows
            )
        )
    for p in problems:
        print(f"{PROG}: error: {p}", file=sys.stderr)
    return EXIT_ERROR if problems else EXIT_OK


def cmd_show(args) -> int:
    registry = _open_registry(args)
    _check_model(registry, args.name)
    if args.version is not None:
        return _show_version(registry, args)
    versions = registry.list_versions(args.name)
    aliases = registry.aliases(args.name)
    history = registry.history(args.name)
    if args.json:
        _print_json(
            {
                "root": registry.store.root,
                "model": args.name,
                "versions": [v.to_dict() for v in versions],
                "aliases": aliases,
                "history": [e.to_dict() for e in history],
            }
        )
        return EXIT_OK

    by_version: dict[int, list[str]] = {}
    for alias, rec in sorted(aliases.items()):
        by_version.setdefault(int(rec["version"]), []).append(alias)
    metric_names: list[str] = []
    for name in args.metric or []:
        metric_names += [m.strip() for m in name.split(",") if m.strip()]
    if not metric_names:
        for v in versions:
            metric_names += [m for m in _key_metric_names(v) if m not in metric_names]

    print(f"Model {args.name}  ({registry.store.root})")
    print()
    print("Aliases")
    if aliases:
        print(
            format_table(
                ("ALIAS", "VERSION", "UPDATED (UTC)", "ACTOR", "REASON"),
                [
                    (
                        a,
                        f"v{rec.get('version')}",
                        _when(rec.get("updated_at")),
                        rec.get("actor"),
                        rec.get("reason"),
                    )
                    for a, rec in sorted(aliases.items())
                ],
            )
        )
    else:
        print("  (none)")
    print()
    print("Versions")
    if versions:
        rows = []
        for v in versions:
            verdict = v.verdict or {}
            rows.append(
                (
                    f"v{v.version}",
                    ",".join(by_version.get(v.version, [])) or None,
                    _when(v.created_at),
                    v.estimator,
                    *[(v.metrics or {}).get(m) for m in metric_names],
                    (("passed" if verdict.get("passed") else "failed") if "passed" in verdict else None),
                    verdict.get("decision"),
                    verdict.get("reason"),
                    v.run_key,
                    _short_sha(v.model_sha256),
                )
            )
        headers = (
            "VERSION",
            "ALIASES",
            "CREATED (UTC)",
            "ESTIMATOR",
            *[m.upper() for m in metric_names],
            "VERDICT",
            "DECISION",
            "REASON",
            "RUN_KEY",
            "SHA256",
        )
        print(format_table(headers, rows, max_widths={"REASON": 60}))
    else:
        print("  (none committed)")
    print()
    print("Alias history")
    if history:
        print(
            format_table(
                ("WHEN (UTC)", "ALIAS", "ACTION", "FROM", "TO", "ACTOR", "REASON"),
                [
                    (
                        _when(e.updated_at),
                        e.alias,
                        e.action,
                        f"v{e.previous_version}" if e.previous_version else None,
                        f"v{e.version}",
                        e.actor,
                        e.reason,
                    )
                    for e in history
                ],
            )
        )
    else:
        print("  (none)")
    return EXIT_OK


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    """Nested dicts as ``a.b.c`` keys; floats at full precision (this is the "in full" view)."""
    if isinstance(value, dict) and (value or not prefix):
        for k in sorted(value):
            _flatten(f"{prefix}.{k}" if prefix else str(k), value[k], out)
    else:
        out.append((prefix, repr(value) if isinstance(value, float) else value))


def _show_version(registry, args) -> int:
    number = _version_number(args.version, "--version")
    mv = registry.get_version(args.name, number)  # NotFoundError names the registered versions
    aliases = sorted(a for a, rec in registry.aliases(args.name).items() if int(rec["version"]) == mv.version)
    if args.json:
        _print_json(
            {"root": registry.store.root, "model": args.name, "version": mv.to_dict(), "aliases": aliases}
        )
        return EXIT_OK
    d = mv.to_dict()
    verdict = d.pop("verdict", None) or {}
    head = [
        ("model", d.pop("model")),
        ("version", d.pop("version")),
        ("aliases", ", ".join(aliases) or "-"),
        ("created_at", d.pop("created_at")),
        ("estimator", d.pop("estimator")),
        ("run_key", d.pop("run_key")),
        ("uri", d.pop("uri")),
        ("model_uri", d.pop("model_uri")),
        ("model_sha256", d.pop("model_sha256")),
    ]
    print(format_table(("FIELD", "VALUE"), head))
    for section in ("metrics", "params", "spec", "lineage", "tags"):
        items: list[tuple[str, Any]] = []
        _flatten("", d.pop(section, None) or {}, items)
        print()
        print(section.capitalize())
        print(format_table(("KEY", "VALUE"), items) if items else "  (none)")
    print()
    print("Verdict")
    if verdict:
        checks = verdict.get("checks") or []
        rows = [
            ("passed", verdict.get("passed")),
            ("decision", verdict.get("decision")),
            ("reason", verdict.get("reason")),
            ("compare_metric", verdict.get("compare_metric")),
            ("champion_version", verdict.get("champion_version")),
            ("bootstrap", verdict.get("bootstrap")),
        ]
        print(format_table(("KEY", "VALUE"), rows))
        if checks:
            print()
            print(
                format_table(
                    ("CHECK", "METRIC", "OP", "THRESHOLD", "CHALLENGER", "CHAMPION", "DELTA", "PASSED"),
                    [
                        (
                            c.get("kind"),
                            c.get("metric"),
                            c.get("op"),
                            c.get("threshold"),
                            c.get("challenger"),
                            c.get("champion"),
                            c.get("delta"),
                            c.get("passed"),
                        )
                        for c in checks
                        if isinstance(c, dict)
                    ],
                )
            )
    else:
        print("  (none: registered without an evaluation)")
    return EXIT_OK


def _moved(args, registry, event) -> int:
    if args.json:
        _print_json({"root": registry.store.root, "event": event.to_dict(), "changed": True})
    else:
        was = f"v{event.previous_version}" if event.previous_version else "unset"
        verb = "Rolled back" if event.action == "rollback" else "Promoted"
        print(
            f"{verb} {event.model} {event.alias!r}: {was} -> v{event.version} "
            f"(by {_clean(event.actor)}: {_clean(event.reason)})"
        )
    return EXIT_OK


def _unchanged(args, registry, name: str, alias: str, version: int) -> int:
    if args.json:
        _print_json(
            {
                "root": registry.store.root,
                "event": None,
                "changed": False,
                "model": name,
                "alias": alias,
                "version": version,
            }
        )
    else:
        print(f"{name} {alias!r} is already v{version}; nothing changed")
    return EXIT_OK


def _warn_verdict(mv) -> None:
    verdict = mv.verdict or {}
    if "passed" in verdict and not verdict.get("passed"):
        print(
            f"{PROG}: warning: {mv.model} v{mv.version} did not pass its quality gate "
            f"({_clean(verdict.get('reason'))}); promoting it anyway",
            file=sys.stderr,
        )


def cmd_promote(args) -> int:
    reason = _reason(args.reason)
    version = _version_number(args.version)
    _check_alias(args.alias)
    registry = _open_registry(args)
    _check_model(registry, args.name)
    mv = registry.get_version(args.name, version)
    if registry.get_alias(args.name, args.alias) == version:
        return _unchanged(args, registry, args.name, args.alias, version)
    _warn_verdict(mv)
    event = registry.promote(
        args.name, version, actor=args.actor or default_actor(), reason=reason, alias=args.alias
    )
    return _moved(args, registry, event)


def cmd_rollback(args) -> int:
    reason = _reason(args.reason)
    to_version = _version_number(args.to, "--to") if args.to is not None else None
    _check_alias(args.alias)
    registry = _open_registry(args)
    _check_model(registry, args.name)
    current = registry.get_alias(args.name, args.alias)
    if current is None:
        raise CliError(f"model {args.name!r} has no {args.alias!r} alias to roll back")
    if to_version is not None:
        registry.get_version(args.name, to_version)
        if to_version == current:
            return _unchanged(args, registry, args.name, args.alias, current)
    event = registry.rollback(
        args.name, actor=args.actor or default_actor(), reason=reason, to_version=to_version, alias=args.alias
    )
    return _moved(args, registry, event)


def _open_store(args):
    from mlops_provider.hooks.artifacts import ArtifactStoreHook, resolve_root

    root = getattr(args, "root", None) or resolve_root(None)
    try:
        return ArtifactStoreHook(root, getattr(args, "conn_id", None)).get_store()
    except (ImportError, ValueError) as err:
        raise CliError(f"cannot open artifact root {root!r}: {err}") from err


def cmd_sweep(args) -> int:
    """Remove the temporaries that killed writers left behind (untouched for --older-than seconds)."""
    from mlops_provider.core.storage import stale_seconds

    store = _open_store(args)
    older = stale_seconds() if args.older_than is None else args.older_than
    if older < 0:
        raise CliError(f"--older-than must be >= 0 seconds (got {older})")
    removed = store.sweep_temporaries(older_than=older, dry_run=args.dry_run)
    if args.json:
        _print_json(
            {"root": store.root, "older_than_seconds": older, "dry_run": args.dry_run, "removed": removed}
        )
        return EXIT_OK
    verb = "would remove" if args.dry_run else "removed"
    for uri in removed:
        print(f"{verb} {uri}")
    print(
        f"{len(removed)} stale temporar{'y' if len(removed) == 1 else 'ies'} {verb} under {store.root} "
        f"(untouched for more than {older:g} s)"
    )
    return EXIT_OK


# --------------------------------------------------------------------------- templates
CONFIG_START = "# ------------------------------------------------------------------ configuration"
CONFIG_END = "# ---------------------------------------------------------------------------------"


def template_files() -> dict[str, Any]:
    """The DAG templates shipped in the package: name (file stem) -> resource."""
    from importlib.resources import files

    folder = files("mlops_provider") / "templates"
    return {
        f.name[:-3]: f
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".py") and not f.name.startswith("_")
    }


def _summary(text: str) -> str:
    import ast

    doc = ast.get_docstring(ast.parse(text)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def _config_names(text: str) -> list[str]:
    import re

    block = text.split(CONFIG_START, 1)[-1].split(CONFIG_END, 1)[0]
    found = re.findall(r"^([A-Z][A-Z0-9_]*(?:, *[A-Z][A-Z0-9_]*)*) =", block, flags=re.M)
    return [name.strip() for names in found for name in names.split(",")]


def cmd_templates_list(args) -> int:
    rows = [(name, _summary(f.read_text())) for name, f in template_files().items()]
    if args.json:
        _print_json([{"name": n, "summary": d} for n, d in rows])
    else:
        print(format_table(["TEMPLATE", "WHAT IT DOES"], rows, {"WHAT IT DOES": 110}))
    return EXIT_OK


def render_template(text: str, template: str, model: str | None) -> tuple[str, str]:
    """(file text, DAG id): ``MODEL_NAME`` set to ``model`` (if given) and ``DAG_ID`` derived from it."""
    import re

    from mlops_provider.core.names import check_name

    suffix = template.removeprefix("mlops_")
    if model is not None:
        check_name(model, "--model", f"'{PROG} templates copy'")
        text, n = re.subn(r'^MODEL_NAME = "[^"\n]*"', f'MODEL_NAME = "{model}"', text, count=1, flags=re.M)
        if n != 1:
            raise CliError(f"template {template} has no MODEL_NAME line in its configuration block")
    text, n = re.subn(
        r"^DAG_ID = .*$",
        f'DAG_ID = f"{{MODEL_NAME}}_{suffix}"  # unique per model in one DAG folder',
        text,
        count=1,
        flags=re.M,
    )
    if n != 1:
        raise CliError(f"template {template} has no DAG_ID line in its configuration block")
    name = re.search(r'^MODEL_NAME = "([^"\n]*)"', text, flags=re.M)
    return text, f"{name.group(1) if name else 'model'}_{suffix}"


def cmd_templates_copy(args) -> int:
    from pathlib import Path

    templates = template_files()
    name = args.name.removesuffix(".py")
    if name not in templates:
        raise CliError(
            f"no template {args.name!r}; templates: {', '.join(templates)} (see '{PROG} templates list')"
        )
    text, dag_id = render_template(templates[name].read_text(), name, args.model)
    folder = Path(args.to).expanduser()
    target = folder / f"{dag_id}.py"
    if target.exists() and not args.force:
        raise CliError(f"{target} exists; pass --force to overwrite it")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{target.name}.tmp"
    tmp.write_text(text)
    tmp.replace(target)
    names = _config_names(text)
    if args.json:
        _print_json({"template": name, "path": str(target), "dag_id": dag_id, "config": names})
        return EXIT_OK
    print(f"wrote {target} (DAG {dag_id}, from template {name})")
    print("next: edit its configuration block, between the two '# ----' lines:")
    print("  " + ", ".join(names))
    print("then check it parses: airflow dags list-import-errors (or python " + str(target) + ")")
    return EXIT_OK


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    # --root is accepted before or after the command; SUPPRESS keeps a later default from
    # overwriting an earlier value.
    root_opt = _Parser(add_help=False)
    root_opt.add_argument(
        "--root",
        default=argparse.SUPPRESS,
        metavar="URI",
        help="artifact root (default: $MLOPS_ARTIFACT_ROOT, Variable mlops_artifact_root, "
        "file://$AIRFLOW_HOME/mlops)",
    )
    root_opt.add_argument(
        "--registry",
        default=argparse.SUPPRESS,
        metavar="KIND",
        help="registry backend: artifacts, mlflow, sagemaker, vertex (default: $MLOPS_REGISTRY, "
        "Variable mlops_registry, artifacts)",
    )
    root_opt.add_argument(
        "--registry-conn-id",
        default=argparse.SUPPRESS,
        metavar="CONN_ID",
        help="Airflow connection of the registry backend (default: $MLOPS_REGISTRY_CONN_ID)",
    )
    root_opt.add_argument(
        "--conn-id",
        default=argparse.SUPPRESS,
        metavar="CONN_ID",
        help="Airflow connection for an s3:// or gs:// root (default: $MLOPS_ARTIFACT_CONN_ID, "
        "Variable mlops_artifact_conn_id)",
    )
    json_opt = _Parser(add_help=False)
    json_opt.add_argument("--json", action="store_true", help="print JSON on stdout")
    move_opt = _Parser(add_help=False)
    move_opt.add_argument("--reason", help="why (required; recorded in the alias history)")
    move_opt.add_argument("--alias", default=DEFAULT_ALIAS, help="alias to move (default: %(default)s)")
    move_opt.add_argument("--actor", help="who (default: cli:$USER@hostname)")

    parser = _Parser(
        prog=PROG, description="Inspect the MLOps model registry and move its aliases.", parents=[root_opt]
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    models = commands.add_parser("models", help="models in the registry", parents=[root_opt])
    actions = models.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)

    p = actions.add_parser("list", help="every model with its champion", parents=[root_opt, json_opt])
    p.set_defaults(func=cmd_list)

    p = actions.add_parser(
        "show", help="a model's versions, aliases and alias history", parents=[root_opt, json_opt]
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--version", metavar="N", help="show one version in full (lineage included)")
    p.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="metric column(s) in the versions table (repeat or comma-separate; default: key metrics)",
    )
    p.set_defaults(func=cmd_show)

    p = actions.add_parser(
        "promote", help="point an alias at a version", parents=[root_opt, json_opt, move_opt]
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION")
    p.set_defaults(func=cmd_promote)

    p = actions.add_parser(
        "rollback",
        help="move an alias back to its previous (or a given) version",
        parents=[root_opt, json_opt, move_opt],
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--to", metavar="VERSION", help="version to roll back to (default: the one before the current)"
    )
    p.set_defaults(func=cmd_rollback)

    tmpl = commands.add_parser("templates", help="the DAG templates shipped with the package")
    tactions = tmpl.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    p = tactions.add_parser("list", help="each template with one line", parents=[json_opt])
    p.set_defaults(func=cmd_templates_list)
    p = tactions.add_parser("copy", help="write a template into your DAG folder", parents=[json_opt])
    p.add_argument("name", metavar="NAME", help="template name (see 'templates list')")
    p.add_argument("--to", required=True, metavar="DIR", help="your DAG folder")
    p.add_argument(
        "--model",
        metavar="MODEL_NAME",
        help="the model's registry name (DAG id, tags, assets derive from it)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_templates_copy)

    maint = commands.add_parser("maintenance", help="housekeeping of the artifact store", parents=[root_opt])
    tasks = maint.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    p = tasks.add_parser(
        "sweep", help="remove temporaries left by killed writers", parents=[root_opt, json_opt]
    )
    p.add_argument(
        "--older-than",
        type=float,
        default=None,
        metavar="SECONDS",
        help="only those untouched this long (default: $MLOPS_STALE_TEMPORARY_SECONDS or 3600)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    p.set_defaults(func=cmd_sweep)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help
            return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_ERROR
        if not getattr(args, "command", None):
            raise CliError(f"choose a command: models, templates, maintenance (see '{PROG} --help')")
        if not hasattr(args, "func"):
            actions = {"maintenance": "sweep", "templates": "list, copy"}.get(
                args.command, "list, show, promote, rollback"
            )
            raise CliError(f"choose an action: {actions} (see '{PROG} {args.command} --help')")
        args.root = getattr(args, "root", None)
        args.json = getattr(args, "json", False)
        return args.func(args)
    except CliError as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `mlops models list | head -1`
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    except Exception as err:
        return _fail(_describe(err))


def _describe(err: BaseException) -> str:
    from mlops_provider.core.errors import MlopsError

    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, (MlopsError, OSError, LookupError, ValueError)):
        return text
    return f"{type(err).__name__}: {text}"


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
