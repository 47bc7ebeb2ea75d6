"""Names and keys: the one place that decides what may become part of a path in the artifact store.

Everything that reaches the store (model, alias, dataset and version names; version references
such as the ``model_ref`` Param; DAG, run and task ids; keys taken from event payloads, XComs, form
fields or URIs) passes through this module, which every other layer calls: the core, the
operators, the CLI, the registry page and the event parsers. The rules:

* a **name** (model, alias, dataset) is ASCII letters, digits, ``_``, ``.`` and ``-``, starting
  with a letter or digit, at most :data:`MAX_NAME` characters (Airflow's limit on a DAG tag, so a
  template can tag its DAG with the model name), matched with ``fullmatch`` (a trailing newline
  does not pass);
* a **version** is an int from 1 to :data:`MAX_VERSION`, or its ASCII digits (``"3"``, ``"v3"``);
  ``"²"`` or a 5,000-digit number are refused, not converted;
* a **key** (a path relative to the artifact root) has no empty, ``.`` or ``..`` segment, no
  leading ``/``, no ``://``, no backslash and no control character;
* a **segment** made from a DAG, run or task id (:func:`path_segment`) maps any id to one safe
  folder name: ASCII letters, digits and ``_.+-`` are kept, other characters become ``_``, and a
  result that is empty or starts with ``.`` (``..`` among them) is prefixed and suffixed with a
  hash of the id, so two ids can not share a folder by being ``.`` or ``..``.

Every refusal is an :class:`~mlops_provider.core.errors.InvalidInputError` (a ``ValueError``)
naming the parameter, what was expected and what was got.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from mlops_provider.core.errors import InvalidInputError

#: Longest model, alias or dataset name (Airflow refuses DAG tags longer than 100 characters).
MAX_NAME = 100
#: Largest version number accepted from outside (a registry never gets near it).
MAX_VERSION = 10**9 - 1
#: Longest key accepted (object stores allow 1,024 bytes; a local path 4,096).
MAX_KEY = 1024
#: The alias production scores with.
CHAMPION = "champion"

_NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_NAME - 1}}}")
_VERSION_RE = re.compile(r"[vV]?([0-9]{1,9})")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")
_MAX_SEGMENT = 200

NAME_RULE = (
    f"a name of ASCII letters, digits, '_', '.' or '-' that starts with a letter or digit "
    f"(at most {MAX_NAME} characters)"
)


def _shown(value: Any, limit: int = 120) -> str:
    """``repr`` of a value, shortened: an error message must not be megabytes long."""
    text = repr(value)
    return (
        text if len(text) <= limit else f"{text[: limit - 20]}...{text[-12:]} ({len(str(value))} characters)"
    )


def _owner(owner: str | None) -> str:
    return f" of {owner}" if owner else ""


def check_name(value: Any, parameter: str = "name", owner: str | None = None) -> str:
    """``value`` if it is a valid model, alias or dataset name; else :class:`InvalidInputError`."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        extra = ""
        if isinstance(value, str) and len(value) > MAX_NAME and _NAME_RE.fullmatch(value[:MAX_NAME]):
            extra = f" It has {len(value)} characters."
        raise InvalidInputError(
            f"The {parameter!r} parameter{_owner(owner)} must be {NAME_RULE}. "
            f"Got {_shown(value)} instead.{extra}"
        )
    return value


def is_name(value: Any) -> bool:
    """Whether ``value`` is a valid name (for filtering folder listings, where a bad entry is skipped)."""
    return isinstance(value, str) and _NAME_RE.fullmatch(value) is not None


def check_version(value: Any, parameter: str = "version", owner: str | None = None) -> int:
    """A version number from an int or its ASCII digits (``3``, ``"3"``, ``"v3"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _VERSION_RE.fullmatch(value.strip()):
        number = int(_VERSION_RE.fullmatch(value.strip()).group(1))
    else:
        number = None
    if number is None or not 1 <= number <= MAX_VERSION:
        raise InvalidInputError(
            f"The {parameter!r} parameter{_owner(owner)} must be a number: a version from 1 to {MAX_VERSION} "
            f"(an int, or ASCII digits such as '3'). Got {_shown(value)} instead."
        )
    return number


def parse_ref(value: Any, parameter: str = "model_ref", owner: str | None = None) -> int | str:
    """A version reference: a version number (int) or an alias name (``"champion"``, ``"@champion"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return check_version(value, parameter, owner)
    if isinstance(value, str):
        text = value.strip()
        if text and _VERSION_RE.fullmatch(text):
            return check_version(text, parameter, owner)
        alias = text[1:] if text.startswith("@") else text
        if _NAME_RE.fullmatch(alias):
            return alias
    raise InvalidInputError(
        f"The {parameter!r} parameter{_owner(owner)} must be a version number or an alias "
        f"({NAME_RULE}, e.g. 'champion'). Got {_shown(value)} instead."
    )


def check_key(key: Any, parameter: str = "key", owner: str | None = None, *, allow_root: bool = False) -> str:
    """``key`` without surrounding slashes if it is a clean key relative to the artifact root.

    Refused: a leading ``/`` (absolute), ``://`` (a URI), a backslash, a control character, and
    empty, ``.`` or ``..`` segments. ``allow_root`` admits ``""`` (the root itself).
    """
    if not isinstance(key, str):
        raise InvalidInputError(
            f"The {parameter!r} parameter{_owner(owner)} must be a key relative to the artifact root "
            "(a string). "
            f"Got {_shown(key)} instead."
        )
    problem = None
    if key.startswith("/"):
        problem = "it is absolute (starts with '/')"
    elif "://" in key:
        problem = "it is a URI, not a key"
    elif "\\" in key:
        problem = "it has a backslash"
    elif _CONTROL_RE.search(key):
        problem = "it has a control character"
    elif len(key) > MAX_KEY:
        problem = f"it has {len(key)} characters (at most {MAX_KEY})"
    clean = key.rstrip("/")
    if problem is None and not clean:
        if allow_root:
            return ""
        problem = "it is empty"
    if problem is None and any(seg in ("", ".", "..") for seg in clean.split("/")):
        problem = "it has an empty, '.' or '..' segment"
    if problem is not None:
        raise InvalidInputError(
            f"The {parameter!r} parameter{_owner(owner)} must be a key inside the artifact root; "
            f"{_shown(key)} is refused: {problem}."
        )
    return clean


def path_segment(value: Any, parameter: str = "id") -> str:
    """One folder name for a DAG, run or task id (see the module docstring); the same id always
    gives the same segment, ids that are already safe are kept as they are."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"The {parameter!r} must be a non-empty string. Got {_shown(value)} instead.")
    safe = _SEGMENT_UNSAFE.sub("_", value)
    if safe.startswith(".") or len(safe) > _MAX_SEGMENT:
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        safe = f"_{safe[: _MAX_SEGMENT - 14]}-{digest}"
    return safe


def run_folder(dag_id: str, run_id: str, task_id: str | None = None) -> str:
    """``<dag>/<run>[/<task>]`` made of :func:`path_segment` s: where a task instance keeps its files."""
    parts = [path_segment(dag_id, "dag_id"), path_segment(run_id, "run_id")]
    if task_id is not None:
        parts.append(path_segment(task_id, "task_id"))
    return "/".join(parts)
