"""What a model version records about how it was made."""

from __future__ import annotations

import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "airflow-provider-mlops",
    "apache-airflow",
    "scikit-learn",
    "numpy",
    "pandas",
    "pyarrow",
    "skops",
    "great-expectations",
    "scipy",
    "lightgbm",
    "xgboost",
)


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES + tuple(extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def code_version(path: str | None) -> dict[str, Any]:
    """The code that defined the pipeline: the file's sha256 and, inside a git checkout, the commit."""
    if not path:
        return {}
    p = Path(path)
    out: dict[str, Any] = {"file": p.name}
    try:
        out["file_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError:
        return out
    try:
        sha = subprocess.run(
            ["git", "-C", str(p.parent), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if sha.returncode == 0:
            out["git_commit"] = sha.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(p.parent), "status", "--porcelain", "--", p.name],
                capture_output=True,
                text=True,
                timeout=5,
            )
            out["git_dirty"] = bool(dirty.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return out
