"""``mlops``: look at the model registry and move its aliases by hand.

::

    mlops [--root URI] models list [--json]
    mlops [--root URI] models show NAME [--version N] [--metric M ...] [--json]
    mlops [--root URI] models promote NAME VERSION --reason TEXT [--alias champion] [--actor WHO] [--json]
    mlops [--root URI] models rollback NAME [--to VERSION] --reason TEXT [--alias champion]
                                            [--actor WHO] [--json]
    mlops [--root URI] models reproduce NAME VERSION [--tolerance 1%] [--scratch URI] [--keep] [--json]
    mlops [--root URI] maintenance sweep [--older-than SECONDS] [--dry-run] [--json]
    mlops [--root URI] gc [--keep-runs N] [--older-than DAYS] [--dry-run | --apply] [--verbose] [--json]
    mlops templates list [--json]
    mlops templates copy NAME --to DIR [--model MODEL_NAME] [--force] [--json]

``--root`` defaults to ``MLOPS_ARTIFACT_ROOT``, then the Airflow Variable ``mlops_artifact_root``,
then ``file://$AIRFLOW_HOME/mlops`` (see :func:`mlops_provider.hooks.artifacts.resolve_root`).

Human output is aligned text tables; ``--json`` prints one JSON document on stdout. Errors print
one line ``mlops: error: ...`` on stderr and exit with status 2; success exits 0;
``models reproduce`` exits 1 when the version came out different beyond the tolerance.

Only the standard library is imported at module level: the registry (and, when ``--root`` is not
given, Airflow for the Variable lookup) is imported when a command runs.
"""

import argparse
import os
import sys
from collections.abc import Sequence

from mlops_provider.cli import gc as gc_cli
from mlops_provider.cli._common import EXIT_ERROR, EXIT_OK, PROG, CliError, _Parser, format_table
from mlops_provider.cli.models import (
    DEFAULT_ALIAS,
    cmd_card,
    cmd_list,
    cmd_promote,
    cmd_reproduce,
    cmd_rollback,
    cmd_show,
    cmd_sweep,
    default_actor,
    key_metrics,
)
from mlops_provider.cli.templates import (
    cmd_templates_copy,
    cmd_templates_list,
    render_template,
    template_files,
)

__all__ = [
    "CliError",
    "build_parser",
    "default_actor",
    "format_table",
    "key_metrics",
    "main",
    "render_template",
    "template_files",
]


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

    p = actions.add_parser(
        "reproduce",
        help="train a version again from its lineage and compare (exit 1 when it differs)",
        parents=[root_opt, json_opt],
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION")
    p.add_argument(
        "--tolerance",
        default="1%",
        help="largest relative metric difference still called the same: 1%% or 0.01 (default: %(default)s)",
    )
    p.add_argument(
        "--scratch",
        metavar="URI",
        help="train into this folder under the artifact root's runs/ (default: a temporary folder)",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch files (model, comparison)")
    p.set_defaults(func=cmd_reproduce)

    p = actions.add_parser(
        "card", help="print a version's model card (Markdown)", parents=[root_opt, json_opt]
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION")
    p.set_defaults(func=cmd_card)

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
    gc_cli.add_parser(commands, [root_opt, json_opt])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help
            return int(exit_.code or 0) if not isinstance(exit_.code, str) else EXIT_ERROR
        if not getattr(args, "command", None):
            raise CliError(f"choose a command: models, templates, maintenance, gc (see '{PROG} --help')")
        if not hasattr(args, "func"):
            actions = {"maintenance": "sweep", "templates": "list, copy"}.get(
                args.command, "list, show, promote, rollback, reproduce"
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
