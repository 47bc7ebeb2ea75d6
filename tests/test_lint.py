"""The code style CI enforces: ``ruff check`` (pycodestyle with the 110-character limit, pyflakes,
import order, bugbear, pyupgrade, Airflow's AIR rules, cyclomatic complexity <= 15) and
``ruff format --check``, over the whole repository with the settings in pyproject.toml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUFF = shutil.which("ruff", path=os.path.dirname(sys.executable)) or shutil.which("ruff")


@pytest.mark.parametrize("command", [["check", "--no-cache"], ["format", "--check", "--no-cache"]])
def test_ruff(command):
    assert RUFF, "ruff comes with the dev extra (make install)"
    result = subprocess.run([RUFF, *command, "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
