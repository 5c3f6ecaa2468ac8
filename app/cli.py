"""The ``stories`` console script: serve, migrate, ingest, evaluate, export."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError
from tqdm import tqdm

from app.config import Settings

cli = typer.Typer(help="News story clustering service.", no_args_is_help=True, add_completion=False)


@cli.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Bind address (default STORIES_HOST).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Port (default STORIES_PORT).")] = None,
) -> None:
    """Migrate the database and serve the HTTP API."""
    import uvicorn

    from app.main import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)
    settings.check_exposure()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, timeout_graceful_shutdown=20)


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest revision."""
    from app import migrate as migrations
    from app.db import make_engine

    engine = make_engine(Settings())
    migrations.upgrade(engine)
    typer.echo(f"database at revision {migrations.current(engine)}")


@cli.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="JSONL file of articles, one object a line.")],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 200,
) -> None:
    """Ingest a JSONL file into the database, through the same code path as the API."""
    from app import migrate as migrations
    from app.db import make_engine, make_sessionmaker
    from app.pipeline import StoryService
    from app.schemas import ArticleIn

    engine = make_engine(Settings())
    migrations.upgrade(engine)
    service = StoryService(make_sessionmaker(engine))
    service.load()
    counts = {"created": 0, "existing": 0, "rejected": 0}
    with file.open(encoding="utf-8") as handle, tqdm(unit="article", desc="ingest") as bar:
        batch: list[ArticleIn] = []

        def flush() -> None:
            for outcome in service.ingest(batch):
                counts["rejected" if outcome.status == "error" else outcome.status] += 1
            bar.update(len(batch))
            batch.clear()

        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                row = {k: v for k, v in row.items() if k in ArticleIn.model_fields}
                batch.append(ArticleIn.model_validate(row))
            except (json.JSONDecodeError, ValidationError) as err:
                counts["rejected"] += 1
                tqdm.write(f"line {number}: rejected: {str(err).splitlines()[0]}", file=sys.stderr)
            if len(batch) >= batch_size:
                flush()
        if batch:
            flush()
    typer.echo(json.dumps(counts))


@cli.command()
def evaluate(
    file: Annotated[Path, typer.Argument(help="Labelled JSONL (id, title, text, source, published_at, label).")],
    wrap: Annotated[bool, typer.Option(help="Wrap each article in a per-source page template.")] = False,
    compress_days: Annotated[Optional[float], typer.Option(min=0.1, help="Move every story into one window of N days.")] = None,
    jitter_hours: Annotated[Optional[float], typer.Option(min=0.0, help="Disturb arrival order by up to N hours.")] = None,
    shuffle: Annotated[bool, typer.Option(help="Random order, timestamps removed.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the variants' randomness.")] = 7,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Articles per ingest call.")] = 1,
) -> None:
    """Cluster a labelled file in a fresh temporary database and score it."""
    from app import variants
    from app.evaluate import evaluate as run, read_jsonl, stream_order

    rows = read_jsonl(file)
    ordered = False
    if wrap:
        rows = variants.wrap(rows, seed=seed)
    if compress_days is not None:
        rows = variants.compress(rows, compress_days, seed=seed)
    if jitter_hours is not None:
        rows, ordered = variants.jitter_order(rows, jitter_hours, seed=seed), True
    if shuffle:
        rows, ordered = variants.shuffle(rows, seed=seed), True
    report = run(rows, batch_size=batch_size, ordered=ordered)
    data = report.as_dict()
    variant = {"wrap": wrap, "compress_days": compress_days, "jitter_hours": jitter_hours, "shuffle": shuffle}
    typer.echo(f"{'articles':<22}{data['articles']} ({data['rejected']} rejected)")
    typer.echo(f"{'stories gold/found':<22}{data['gold_stories']} / {data['clusters']}")
    for name in ("bcubed", "pairwise"):
        typer.echo(
            f"{name + ' P/R/F1':<22}{data[name + '_precision']:.4f} / {data[name + '_recall']:.4f} / {data[name + '_f1']:.4f}"
        )
    typer.echo(f"{'articles/s':<22}{data['articles_per_second']}")
    typer.echo(json.dumps({"file": str(file), **{k: v for k, v in variant.items() if v}, **data}))


@cli.command()
def calibrate(
    file: Annotated[Path, typer.Argument(help="Labelled JSONL to fit the join/new decision on.")],
    output: Annotated[Optional[Path], typer.Option(help="Where to write (default: the shipped decision.json).")] = None,
) -> None:
    """Fit the story-join model and threshold on labelled news."""
    from app import calibrate as fitting
    from app.evaluate import read_jsonl
    from clustering.assign import MODEL_PATH

    calibration = fitting.calibrate(read_jsonl(file))
    fitting.write(calibration, output or MODEL_PATH)
    typer.echo(json.dumps(calibration))


@cli.command()
def export(
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="File to write (default stdout).")] = None,
    since: Annotated[Optional[datetime], typer.Option(help="Clusters active since this time.")] = None,
    min_articles: Annotated[int, typer.Option(min=1)] = 1,
) -> None:
    """Write clusters with their articles as JSONL."""
    from app import crud
    from app.db import make_engine, make_sessionmaker

    sessions = make_sessionmaker(make_engine(Settings(), writer=False))
    out = output.open("w", encoding="utf-8") if output else sys.stdout
    written = 0
    with sessions() as session:
        cursor = None
        while True:
            rows, cursor = crud.list_clusters(
                session=session, limit=200, cursor=cursor, since=since, min_articles=min_articles
            )
            for cluster in rows:
                members = crud.cluster_members(session=session, cluster_id=cluster.id)
                record = {
                    "id": cluster.id,
                    "title": cluster.title,
                    "summary": cluster.summary,
                    "keywords": cluster.keywords,
                    "sources": cluster.sources,
                    "article_count": cluster.article_count,
                    "first_published_at": cluster.first_published_at.isoformat() if cluster.first_published_at else None,
                    "last_published_at": cluster.last_published_at.isoformat() if cluster.last_published_at else None,
                    "articles": [
                        {
                            "id": a.id,
                            "url": a.url,
                            "external_id": a.external_id,
                            "title": a.title,
                            "source": a.source,
                            "published_at": a.published_at.isoformat(),
                            "duplicate_of": a.duplicate_of,
                        }
                        for a in members
                    ],
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += 1
            if cursor is None:
                break
    if output:
        out.close()
    typer.echo(f"{written} clusters written", err=True)


def main() -> None:
    cli()
