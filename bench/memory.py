"""Memory of the in-memory index, per article it holds, by where it was allocated.

    python -m bench.memory --db /tmp/stored-100k.db --top 12

Rebuilds ``StoryService``'s caches from a copy of a stored database (``bench.seed``)
under ``tracemalloc`` and prints the bytes held per article in the index window, by
allocation site (file and line), largest first. Fixed-size arrays (the document
frequencies over the hashed term space, a dense scratch row) show up large at small
stores and vanish per article at large ones; what grows with the window is what counts.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import tracemalloc
from pathlib import Path

from app.config import Settings
from app.service.ingest import StoryService
from app.store.db import make_engine, make_sessionmaker
from bench.report import print_header


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="stored SQLite database (bench.seed)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    if not args.db.exists():
        parser.error(f"{args.db} does not exist: build it with python -m bench.seed")
    print_header("index memory per article")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        db = Path(tmp) / "stored.db"
        shutil.copy(args.db, db)
        settings = Settings(database_url=f"sqlite:///{db}")
        engine = make_engine(settings)
        service = StoryService(make_sessionmaker(engine), horizon_days=settings.index_horizon_days)
        tracemalloc.start()
        service.load()
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        engine.dispose()
    held = len(service.index.article_story_)
    sites = snapshot.statistics("lineno")
    total = sum(site.size for site in sites)
    print(
        f"{held} articles and {len(service.index.stories_)} stories in the index window; "
        f"{total / 2**20:.0f} MiB traced, {total / max(held, 1):,.0f} bytes an article"
    )
    print("\n| bytes an article | allocated at |")
    print("|---|---|")
    for site in sites[: args.top]:
        frame = site.traceback[0]
        where = frame.filename.split("site-packages/")[-1].replace(str(Path.cwd()) + "/", "")
        print(f"| {site.size / max(held, 1):,.0f} | `{where}:{frame.lineno}` |")


if __name__ == "__main__":
    main()
