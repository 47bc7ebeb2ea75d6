"""Helpers shared by the benchmark scripts: process memory, machine CPU load, importability."""

from __future__ import annotations

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _ensure_provider_importable() -> None:
    try:
        import mlops_provider  # noqa: F401
    except ImportError:
        sys.path.insert(0, os.path.join(REPO, "provider"))


def _rss_mib() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    cur = peak = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    cur = int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    if peak is None:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = r / (1024 * 1024) if sys.platform == "darwin" else r / 1024
    return (cur if cur is not None else float("nan")), peak


def _busy_cpu_seconds() -> float | None:
    """CPU seconds spent by the whole machine (all processes) so far, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in parts[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _children_cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
