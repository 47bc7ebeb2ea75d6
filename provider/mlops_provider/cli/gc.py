"""``mlops gc``: remove what no registered version, alias or recent run needs (see
:mod:`mlops_provider.core.gc` for exactly what is kept). A dry run unless ``--apply``."""

from __future__ import annotations

import argparse
import time

from mlops_provider.cli._common import EXIT_OK, CliError, _print_json, format_table


def add_parser(commands, parents: list[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = commands.add_parser(
        "gc",
        help="remove run folders, snapshots, drift histories and predictions nothing needs",
        description="Remove what no registered version, alias or recent run references "
        "(a dry run unless --apply).",
        parents=parents,
    )
    p.add_argument(
        "--keep-runs",
        default="10",
        metavar="N",
        help="keep the N most recent run folders per DAG, prediction sets per model and DAG, drift "
        "history entries per model and champion (default: %(default)s)",
    )
    p.add_argument(
        "--older-than",
        default="30",
        metavar="DAYS",
        help="only remove what was last modified more than DAYS days ago (default: %(default)s)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--dry-run", dest="apply", action="store_false", help="report what would be removed (default)"
    )
    mode.add_argument("--apply", dest="apply", action="store_true", help="remove it")
    p.add_argument("--verbose", "-v", action="store_true", help="list every item, not only the totals")
    p.set_defaults(func=cmd_gc, apply=False)
    return p


_KEPT_KINDS = {
    "referenced by": "referenced",
    "one of the": "most recent",
    "newer than": "newer than --older-than",
    "modified within": "in flight (grace period)",
}


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def cmd_gc(args) -> int:
    from mlops_provider.cli.models import _open_registry
    from mlops_provider.core import gc
    from mlops_provider.core.errors import InvalidInputError

    try:  # bad options are refused before anything is opened
        keep_runs = gc.check_keep_runs(args.keep_runs)
        days = gc.check_days(args.older_than)
    except InvalidInputError as err:
        raise CliError(str(err)) from None
    registry = _open_registry(args)  # the root check (hooks.artifacts.check_root) applies
    store = registry.store
    t0 = time.perf_counter()
    try:
        plan = gc.plan(store, registry, keep_runs=keep_runs, older_than_days=days)
        if args.apply:
            outcome = gc.apply(store, plan)
            items, skipped = outcome.removed, outcome.skipped
        else:
            items, skipped = plan.by_category(), []
    except gc.GcError as err:
        raise CliError(str(err)) from None
    summary = gc.summarize(items)
    total = {
        "count": sum(s["count"] for s in summary.values()),
        "bytes": sum(s["bytes"] for s in summary.values()),
    }
    kept_reasons: dict[str, int] = {}
    for why in plan.kept.values():
        kind = next((k for k in _KEPT_KINDS if why.startswith(k)), why)
        kept_reasons[_KEPT_KINDS.get(kind, kind)] = kept_reasons.get(_KEPT_KINDS.get(kind, kind), 0) + 1
    seconds = round(time.perf_counter() - t0, 3)
    if args.json:
        _print_json(
            {
                "root": store.root,
                "dry_run": not args.apply,
                "keep_runs": keep_runs,
                "older_than_days": days,
                "grace_seconds": plan.grace_seconds,
                "summary": summary,
                "total": total,
                "items": items,
                "kept": {"count": len(plan.kept), "by_reason": kept_reasons},
                "skipped": skipped,
                "symlinks_not_followed": plan.symlinks,
                "seconds": seconds,
            }
        )
        return EXIT_OK
    verb = "Removed" if args.apply else "Would remove (dry run; --apply removes)"
    print(
        f"{verb} under {store.root}: kept what versions, aliases, the {keep_runs} most recent runs "
        f"and anything newer than {days:g} days need"
    )
    rows = [(c, summary[c]["count"], human_bytes(summary[c]["bytes"])) for c in gc.CATEGORIES]
    rows.append(("total", total["count"], human_bytes(total["bytes"])))
    print(format_table(("CATEGORY", "COUNT", "BYTES"), rows))
    if args.verbose:
        for category in gc.CATEGORIES:
            for item in items[category]:
                print(f"  {category:<13}  {human_bytes(item['bytes']):>10}  {item['key']}")
    print(f"Kept {len(plan.kept)} of {len(plan.units)} runs, snapshots, prediction sets and drift files.")
    for s in skipped:
        print(f"skipped {s['key']}: {s['reason']}")
    if plan.symlinks:
        print(f"{len(plan.symlinks)} symlink(s) not followed: {', '.join(plan.symlinks[:5])}")
    print(f"({seconds:.2f} s)")
    return EXIT_OK
