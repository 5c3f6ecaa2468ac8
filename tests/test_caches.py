"""app.service.caches: what a process holds of the database, and what it gives back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# A started service frees large blocks for good. The script first frees a 30 MiB block
# (by default glibc then carves every smaller block from the heap), then allocates fifty
# 4 MiB arrays, each with a smaller block kept above it, and frees the arrays: on the
# heap they would stay in the process (~200 MiB).
_FREED_AFTER_A_START = """
import numpy as np, psutil
from fastapi.testclient import TestClient
from app.api.factory import create_app
from app.config import Settings

settings = Settings(database_url="sqlite:///{db}", api_key=None, workers=0, index_snapshot="off")
with TestClient(create_app(settings)) as client:
    assert client.get("/readyz").status_code == 200
    process = psutil.Process()
    big = np.ones(30 << 17)
    del big
    before = process.memory_info().rss
    arrays, kept = [], []
    for _ in range(50):
        arrays.append(np.ones(4 << 17))
        kept.append(np.ones(4096))
    del arrays
    print((process.memory_info().rss - before) >> 20)
"""


def test_a_started_service_returns_freed_large_arrays_to_the_system(tmp_path: Path):
    script = _FREED_AFTER_A_START.format(db=tmp_path / "stories.db")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    held_mib = int(done.stdout.split()[-1])
    assert held_mib < 50
