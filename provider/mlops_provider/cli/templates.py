"""``mlops templates list|copy``: the DAG templates shipped in the package, copied into a DAG
folder for one model."""

from __future__ import annotations

from typing import Any

from mlops_provider.cli._common import EXIT_OK, PROG, CliError, _print_json, format_table

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
