"""Airflow's operator-init rule over the provider's operators: every template field is assigned in
``__init__`` from the argument of the same name (``self.x = x``, ``self.x = x or default``, or
``super().__init__(x=x)``), and ``__init__`` applies no logic to a template field (it would run on
the un-rendered Jinja string). The rule is Airflow's provider convention (its pre-commit check
``validate_operators_init``); this is an independent implementation of it, applied to every class
whose base is named ``...BaseOperator`` or ``...BaseSensorOperator``, as Airflow's is."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "provider" / "mlops_provider"
OPERATOR_BASES = ("BaseOperator", "BaseSensorOperator")


def _base_name(node: ast.expr) -> str:
    node = node.value if isinstance(node, ast.Subscript) else node
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def _template_fields(cls: ast.ClassDef) -> list[str]:
    for item in cls.body:
        targets = (
            item.targets
            if isinstance(item, ast.Assign)
            else [item.target]
            if isinstance(item, ast.AnnAssign)
            else []
        )
        if any(isinstance(t, ast.Name) and t.id == "template_fields" for t in targets):
            if isinstance(item.value, ast.Tuple):
                return [e.value for e in item.value.elts if isinstance(e, ast.Constant)]
    return []


def _same_name(value: ast.expr | None, field: str) -> bool:
    """``field``, ``field or default``, ``field if field [is not None] else default``."""
    if isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or):
        value = value.values[0]
    if isinstance(value, ast.IfExp) and isinstance(value.body, ast.Name) and value.body.id == field:
        value = value.body
    return isinstance(value, ast.Name) and value.id == field


def _findings(cls: ast.ClassDef) -> list[str]:
    fields = _template_fields(cls)
    init = next((i for i in cls.body if isinstance(i, ast.FunctionDef) and i.name == "__init__"), None)
    if init is None or not fields:
        return []
    out: list[str] = []
    assigned: set[str] = set()
    sanctioned: set[int] = set()
    for node in ast.walk(init):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                    and target.attr in fields
                ):
                    if _same_name(node.value, target.attr):
                        assigned.add(target.attr)
                        sanctioned.update(
                            id(n)
                            for n in ast.walk(node.value)
                            if isinstance(n, ast.Name) and n.id == target.attr
                        )
                    else:
                        out.append(
                            f"{cls.name}: self.{target.attr} is not assigned "
                            f"from the argument {target.attr!r}"
                        )
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "__init__"
            and isinstance(node.func.value, ast.Call)
            and getattr(node.func.value.func, "id", "") == "super"
        ):
            for kw in node.keywords:
                if kw.arg in fields:
                    if _same_name(kw.value, kw.arg):
                        assigned.add(kw.arg)
                        sanctioned.update(
                            id(n) for n in ast.walk(kw.value) if isinstance(n, ast.Name) and n.id == kw.arg
                        )
                    else:
                        out.append(
                            f"{cls.name}: super().__init__({kw.arg}=...) is not the argument {kw.arg!r}"
                        )
    out += [
        f"{cls.name}: template field {f!r} is not assigned in __init__ from the argument of that name"
        for f in fields
        if f not in assigned
    ]
    params = {a.arg for a in [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]}
    defaults = {
        id(n) for d in [*init.args.defaults, *init.args.kw_defaults] if d is not None for n in ast.walk(d)
    }
    for node in ast.walk(init):
        if id(node) in defaults or id(node) in sanctioned:
            continue
        if (
            isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id in fields
            and node.id in params
        ):
            out.append(
                f"{cls.name}: __init__ line {node.lineno} uses the template field {node.id!r} "
                "(un-rendered there)"
            )
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Load)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
            and node.attr in fields
        ):
            out.append(f"{cls.name}: __init__ line {node.lineno} reads self.{node.attr} (un-rendered there)")
    return out


def operator_classes() -> list[tuple[Path, ast.ClassDef]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                _base_name(b).endswith(OPERATOR_BASES) for b in node.bases
            ):
                found.append((path, node))
    return found


def test_the_rule_finds_what_it_should():
    bad = ast.parse("""
class A(MlopsBaseOperator):
    template_fields = ("label_column", "x", "y", "z")
    def __init__(self, *, label, x, y, z=None, **kwargs):
        super().__init__(**kwargs)
        self.label_column = label
        self.x = x
        if y:
            pass
        self.y = y
""").body[0]
    problems = _findings(bad)
    assert any("self.label_column is not assigned from the argument" in p for p in problems)
    assert any("'z' is not assigned" in p for p in problems)
    assert any("uses the template field 'y'" in p for p in problems)
    assert not any("'x'" in p for p in problems)


def test_every_operator_follows_the_rule():
    classes = operator_classes()
    assert len(classes) >= 15
    problems = [f"{path.relative_to(REPO)}: {p}" for path, cls in classes for p in _findings(cls)]
    assert problems == []
