"""What every benchmark prints beside its figures: the machine, and medians of runs.

The machine is shared and noisy, so a benchmark repeats each measurement ``--runs``
times and reports the median (with the spread), and compares two systems only when
they were measured side by side in the same process.
"""

from __future__ import annotations

import os
import platform
import re
import sqlite3
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def postgres_version() -> str:
    try:
        out = subprocess.run(["psql", "--version"], capture_output=True, text=True, timeout=5).stdout
        found = re.search(r"\d+(?:\.\d+)+", out)
        return found.group(0) if found else "absent"
    except (OSError, subprocess.SubprocessError):
        return "absent"


def machine() -> str:
    """One line: cores, CPU model, Python, SQLite and PostgreSQL (client) versions, load."""
    load = os.getloadavg()
    return (
        f"machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, PostgreSQL client {postgres_version()}; "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def revision() -> str:
    """The commit measured, and whether the working tree differed from it."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "app", "clustering", "migrations"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes to app/clustering/migrations' if dirty else ''}" if head else "unknown"


def print_header(title: str) -> None:
    print(f"== {title}")
    print(machine())
    print(f"code: {revision()}")
    print(f"command: python -m bench.{Path(sys.argv[0]).stem} {' '.join(sys.argv[1:])}".rstrip())
    sys.stdout.flush()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], digits: int = 1) -> str:
    """``median (min-max, n runs)`` for a table cell."""
    if not values:
        return "n/a"
    return f"{median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f}, {len(values)} runs)"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


def require_data() -> None:
    """Exit 0 with "skipped" when the evaluation data is not next to the repository."""
    if not DATA.is_dir():
        print(f"skipped: no evaluation data at {DATA} (the stream is built from its article bodies)")
        raise SystemExit(0)
