"""``mlops models ...`` and ``mlops maintenance sweep``: the model registry and the artifact store
from a shell."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sys
from typing import Any

from mlops_provider.cli._common import EXIT_ERROR, EXIT_OK, PROG, CliError, _print_json, clean, format_table
from mlops_provider.core.names import CHAMPION as DEFAULT_ALIAS


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
    return ", ".join(f"{k}={clean(v)}" for k, v in metrics.items()) or "-"


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
            f"(by {clean(event.actor)}: {clean(event.reason)})"
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
            f"({clean(verdict.get('reason'))}); promoting it anyway",
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


# --------------------------------------------------------------------------- reproduce
EXIT_DIFFERENT = 1  # `models reproduce`: the version came out different beyond the tolerance


def _tolerance(text: str) -> float:
    """``1%`` or ``0.01``: a relative tolerance in [0, 1]."""
    raw = str(text).strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise CliError(
            f"--tolerance must be a fraction in [0, 1] such as 0.01, or a percentage such as 1% "
            f"(got {raw[:40]!r})"
        )
    return value


def cmd_reproduce(args) -> int:
    """Train a version again from its lineage and compare; exit 0 when it is the same, 1 when not."""
    from mlops_provider.core.steps.reproduce import ReproduceParams, reproduce

    version = _version_number(args.version)
    tolerance = _tolerance(args.tolerance)
    registry = _open_registry(args)
    _check_model(registry, args.name)
    params = ReproduceParams.build(
        f"'{PROG} models reproduce'",
        model_name=args.name,
        version=version,
        tolerance=tolerance,
        scratch=args.scratch,
        keep=args.keep,
    )
    result = reproduce(params, registry=registry, store=registry.store, caller=f"'{PROG} models reproduce'")
    code = EXIT_OK if result.reproducible else EXIT_DIFFERENT
    if args.json:
        _print_json({"root": registry.store.root, **result.to_dict()})
        return code
    print(result.summary)
    print(f"  recorded model sha256    {result.recorded['model_sha256']}")
    print(f"  reproduced model sha256  {result.reproduced['model_sha256']}  ({result.seconds:.1f} s)")
    recorded, reproduced = result.recorded["metrics"], result.reproduced["metrics"]
    if recorded:
        by_name = {d["name"]: d for d in result.differences if d["kind"] == "metric"}
        print()
        print(f"Metrics on the evaluation snapshot {(result.recorded['eval_dataset'] or {}).get('uri', '-')}")
        rows = []
        for name in sorted(recorded):
            d = by_name.get(name)
            rows.append(
                (
                    name,
                    recorded[name],
                    reproduced.get(name),
                    "same" if d is None else _pct(d["relative"]),
                    "yes" if d is None or d["within_tolerance"] else "NO",
                )
            )
        print(
            format_table(("METRIC", "RECORDED", "REPRODUCED", "DIFFERENCE", f"WITHIN {tolerance:.2%}"), rows)
        )
    others = [d for d in result.differences if d["kind"] != "metric"]
    print()
    print("Differences")
    if others:
        print(
            format_table(
                ("KIND", "NAME", "RECORDED", "REPRODUCED"),
                [(d["kind"], d["name"], d["recorded"], d["reproduced"]) for d in others],
                max_widths={"RECORDED": 70, "REPRODUCED": 70},
            )
        )
    else:
        print("  (none besides the metrics above)" if recorded else "  (none)")
    for what in result.missing:
        print(f"{PROG}: note: not recorded with the version: {what}", file=sys.stderr)
    if result.scratch_uri:
        print(f"\nkept in {result.scratch_uri}")
    return code


def _pct(rel: Any) -> str:
    return "undefined" if rel is None else f"{rel:+.4%}"


# --------------------------------------------------------------------------- mlops models card
def cmd_card(args) -> int:
    """Print a version's model card (Markdown), as stored next to the version at registration."""
    registry = _open_registry(args)
    _check_model(registry, args.name)
    number = _version_number(args.version)
    mv = registry.get_version(args.name, number)
    card = registry.read_card(args.name, mv.version)
    if card is None:
        raise CliError(
            f"{args.name} v{mv.version} has no model card (registered before cards existed, or not by the "
            "register step)"
        )
    if args.json:
        _print_json({"model": args.name, "version": mv.version, "card": card})
    else:
        sys.stdout.write(card)
    return EXIT_OK
