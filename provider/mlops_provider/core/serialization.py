"""Safe model files: skops, an explicit trusted-type list, and a sha256 pinned by the registry.

* :func:`dump_model` writes skops bytes that are byte-for-byte reproducible for the same model
  (zip entries in a fixed order with a fixed timestamp), so a rerun yields the same sha256.
* :func:`load_model` refuses a file whose sha256 differs from the expected one, refuses pickles,
  and passes skops an explicit allow-list built from :data:`TRUSTED_TYPES`,
  :data:`TRUSTED_PREFIXES`, ``MLOPS_TRUSTED_TYPES`` and the caller's ``trusted_types``; a type
  outside it is named in the error. Nothing is ever loaded with ``trusted=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Iterable
from typing import Any

from mlops_provider.core.errors import CorruptArtifactError, IntegrityError, UnsafeModelError

#: Exact type names trusted beyond skops' own defaults.
TRUSTED_TYPES = frozenset(
    {
        "numpy.dtype",
        # HistGradientBoosting's categorical preprocessing wraps sklearn's check_array in a partial;
        # skops lists the wrapped function as a type of its own, so it is still checked.
        "functools.partial",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._pcg64.PCG64",
        "numpy.random._mt19937.MT19937",
        "numpy.random.bit_generator.SeedSequence",
        "lightgbm.basic.Booster",
        "xgboost.core.Booster",
    }
)
#: Module prefixes whose classes are trusted (estimators and their fitted internals).
TRUSTED_PREFIXES = ("sklearn.", "lightgbm.sklearn.", "xgboost.sklearn.")

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_PICKLE_MAGIC = (b"\x80",)  # protocol 2+ pickles start with PROTO (0x80)


@contextlib.contextmanager
def _quiet():
    """skops probes module attributes while resolving types, which trips deprecation warnings of
    unrelated modules (Airflow's among them); they say nothing about the model."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _skops():
    with _quiet():  # skops scans every loaded module when first imported
        import skops.io

    return skops.io


def _env_trusted() -> set[str]:
    raw = os.environ.get("MLOPS_TRUSTED_TYPES", "")
    return {t.strip() for t in raw.split(",") if t.strip()}


def is_trusted(type_name: str, extra: Iterable[str] = ()) -> bool:
    if type_name.startswith(("builtins.", "posix.", "nt.", "os.", "subprocess.", "sys.", "shutil.")):
        return type_name in set(extra)  # only if named explicitly by the user
    return (
        type_name in TRUSTED_TYPES
        or type_name.startswith(TRUSTED_PREFIXES)
        or type_name in _env_trusted()
        or type_name in set(extra)
    )


def dump_model(model: Any, trusted_types: Iterable[str] = ()) -> bytes:
    """skops bytes for ``model``; refuses a model that could not be loaded back safely."""
    sio = _skops()

    with _quiet():
        raw = sio.dumps(model)
        data = _normalize_zip(raw)
        untrusted = sio.get_untrusted_types(data=data)
    refused = [t for t in untrusted if not is_trusted(t, trusted_types)]
    if refused:
        raise UnsafeModelError(
            f"The model holds types outside the trusted list, so it could not be loaded back safely: {refused}. "
            "If you trust them, pass trusted_types=[...] (or set MLOPS_TRUSTED_TYPES)."
        )
    return data


def _normalize_zip(raw: bytes) -> bytes:
    """Rewrite a skops archive so equal models give equal bytes.

    skops names array files and shared-reference ids after ``id()`` of the objects, which differ
    between processes; they are renumbered in order of first appearance in ``schema.json``, and the
    entries are written in a fixed order with a fixed timestamp.
    """
    import json
    import re

    src = zipfile.ZipFile(io.BytesIO(raw))
    schema = json.loads(src.read("schema.json"))
    ids: dict[int, int] = {}
    file_re = re.compile(r"^(\d+)(\.\w+)$")

    def renum(i: int) -> int:
        return ids.setdefault(int(i), len(ids) + 1)

    def walk(o):
        if isinstance(o, dict):
            out = {}
            for k, v in o.items():
                if k == "__id__" and isinstance(v, int):
                    out[k] = renum(v)
                elif k == "file" and isinstance(v, str) and file_re.match(v):
                    num, ext = file_re.match(v).groups()
                    out[k] = f"{renum(int(num))}{ext}"
                else:
                    out[k] = walk(v)
            return out
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    schema = walk(schema)
    entries = {"schema.json": json.dumps(schema, indent=2).encode()}
    for name in src.namelist():
        if name == "schema.json":
            continue
        m = file_re.match(name)
        new_name = f"{renum(int(m.group(1)))}{m.group(2)}" if m else name
        entries[new_name] = src.read(name)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            dst.writestr(info, entries[name])
    return out.getvalue()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_model(
    data: bytes,
    *,
    expected_sha256: str | None,
    source: str = "model file",
    trusted_types: Iterable[str] = (),
) -> Any:
    """Load skops bytes after checking sha256, format and the trusted-type list."""
    sio = _skops()

    actual = sha256_bytes(data)
    if expected_sha256 is not None and actual != expected_sha256:
        raise IntegrityError(
            f"{source} has sha256 {actual}, but its registry entry pins {expected_sha256}: the file was changed "
            "after registration. Refusing to load it."
        )
    if data[:1] in _PICKLE_MAGIC or data[:2] in (b"(d", b"(l", b"cs"):
        raise UnsafeModelError(
            f"{source} is a pickle file; only skops files are loaded, since a pickle can run arbitrary code on load. "
            "Re-save the model with skops (mlops_provider.core.serialization.dump_model)."
        )
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise CorruptArtifactError(f"{source} is not a skops file (expected a zip archive, got {data[:8]!r}...)")
    try:
        with _quiet():
            untrusted = sio.get_untrusted_types(data=data)
    except Exception as err:
        raise CorruptArtifactError(f"{source} is not a readable skops file: {err}") from err
    extra = list(trusted_types)
    refused = [t for t in untrusted if not is_trusted(t, extra)]
    if refused:
        raise UnsafeModelError(
            f"{source} holds types outside the trusted list: {refused}. Refusing to load it. If you trust them, "
            "pass trusted_types=[...] or set MLOPS_TRUSTED_TYPES."
        )
    try:
        with _quiet():
            return sio.loads(data, trusted=list(untrusted))
    except Exception as err:
        raise CorruptArtifactError(f"{source} could not be loaded by skops: {err}") from err
