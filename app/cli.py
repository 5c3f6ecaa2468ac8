"""The ``stories`` console script: serve, migrate, ingest, evaluate, export."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from pydantic import TypeAdapter, ValidationError
from tqdm import tqdm

from app.config import Settings, load_settings

cli = typer.Typer(help="News story clustering service.", no_args_is_help=True, add_completion=False)


class Level(StrEnum):
    """What one gold label is scored as: an ongoing story (as labelled) or one event of it."""

    thread = "thread"
    event = "event"


def _settings(**overrides: object) -> Settings:
    """Settings for a command, with logging set up from them (exits naming a bad variable)."""
    from app.observability import configure_logging

    settings = load_settings(**overrides)
    configure_logging(settings)
    return settings


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default STORIES_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default STORIES_PORT).")] = None,
) -> None:
    """Migrate the database (unless STORIES_MIGRATE_ON_START=false) and serve the HTTP API.

    On SIGTERM or Ctrl-C the server stops accepting connections and lets in-flight
    requests finish, for at most STORIES_SHUTDOWN_TIMEOUT seconds.
    """
    import uvicorn

    from app.api.factory import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = _settings(**overrides)
    settings.check_exposure()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        timeout_graceful_shutdown=settings.shutdown_timeout,
        log_config=None,  # logging is configured by the service (JSON or readable)
        access_log=False,  # requests are logged with their request id by the service
        server_header=False,
    )


@cli.command()
def migrate() -> None:
    """Bring the database schema to the newest revision (once per deploy when replicas share a database)."""
    from app.store import migrate as migrations
    from app.store.db import make_engine

    engine = make_engine(_settings())
    try:
        migrations.upgrade(engine)
        typer.echo(f"database at revision {migrations.current(engine)}")
    finally:
        engine.dispose()


def _open_input(file: str, stack: ExitStack) -> tuple[BinaryIO, int | None]:
    """The byte stream to read (``-``: standard input) and its size when known."""
    if file == "-":
        return sys.stdin.buffer, None
    path = Path(file)
    if not path.is_file():
        raise typer.BadParameter(f"no such file: {file}", param_hint="FILE")
    return stack.enter_context(path.open("rb")), path.stat().st_size


@cli.command()
def ingest(
    file: Annotated[str, typer.Argument(help="JSONL file of articles, one object a line; - reads standard input.")],
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Articles per transaction (or request).")] = 200,
    url: Annotated[
        str | None, typer.Option(help="Post to the service at this base URL instead of writing the database.")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option(help="Bearer key for --url (default STORIES_API_KEY).", show_default=False)
    ] = None,
    progress: Annotated[
        bool | None, typer.Option("--progress/--no-progress", help="Progress bar (default: when in a terminal).")
    ] = None,
) -> None:
    """Backfill a JSONL file of any size in batches, with a progress bar (rate, ETA).

    Articles go through the same pipeline as the API, into the configured database
    or, with --url, to a running service (POST /v1/articles/batch). Idempotent: an
    interrupted run resumes when run again, already stored articles count as existing.
    Prints {"created", "existing", "rejected"} as JSON when done.
    """
    from app import backfill

    settings = _settings()
    tally = backfill.Tally()
    with ExitStack() as stack:
        stream, size = _open_input(file, stack)
        if url is not None:
            key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
            sink = backfill.RemoteSink(url, key)
            stack.callback(sink.close)
        else:
            sink = backfill.LocalSink(_local_service(settings, stack))
        bar = stack.enter_context(
            tqdm(
                total=size,
                desc="ingest",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=None if progress is None else not progress,
                file=sys.stderr,
                dynamic_ncols=True,
            )
        )
        done_line = 0
        try:
            for batch in backfill.batches(stream, batch_size):
                for number, reason in batch.rejected:
                    tally.rejected += 1
                    tqdm.write(f"line {number}: rejected: {reason}", file=sys.stderr)
                results = sink.send(batch.lines) if batch.lines else []
                for line, result in zip(batch.lines, results):
                    tally.count(result.status)
                    if result.status == "error":
                        tqdm.write(f"line {line.number}: rejected: {result.error}", file=sys.stderr)
                    elif result.status == "created" and line.article.url is None and line.article.external_id is None:
                        tally.unkeyed += 1
                done_line = batch.last_line
                bar.update(batch.nbytes)
                elapsed = bar.format_dict["elapsed"] or 1e-9
                bar.set_postfix_str(
                    f"{tally.articles} articles, {tally.articles / elapsed:.0f} articles/s, "
                    f"{tally.created} new, {tally.existing} seen, {tally.rejected} rejected",
                    refresh=False,
                )
        except (KeyboardInterrupt, backfill.BackfillError) as err:
            bar.close()
            reason = "interrupted" if isinstance(err, KeyboardInterrupt) else f"stopped: {err}"
            typer.echo(
                f"ingest {reason}; lines 1-{done_line} are stored. Run the same command again to resume "
                "(stored articles are skipped).",
                err=True,
            )
            typer.echo(json.dumps(tally.as_dict()))
            raise typer.Exit(130 if isinstance(err, KeyboardInterrupt) else 1) from None
    if tally.unkeyed:
        typer.echo(
            f"warning: {tally.unkeyed} articles had neither url nor external_id; running this file again "
            "would store them again",
            err=True,
        )
    typer.echo(json.dumps(tally.as_dict()))


def _local_service(settings: Settings, stack: ExitStack):
    from app.service.ingest import StoryService
    from app.store import migrate as migrations
    from app.store.db import make_engine, make_sessionmaker

    engine = make_engine(settings)
    stack.callback(engine.dispose)
    if settings.migrate_on_start:
        migrations.upgrade(engine)
    else:
        migrations.require_head(engine)
    service = StoryService(
        make_sessionmaker(engine), horizon_days=settings.index_horizon_days, snapshot_path=settings.snapshot_path()
    )
    service.load()
    stack.callback(service.close)
    return service


@cli.command()
def evaluate(
    file: Annotated[Path, typer.Argument(help="Labelled JSONL (id, title, text, source, published_at, label).")],
    wrap: Annotated[bool, typer.Option(help="Wrap each article in a per-source page template.")] = False,
    compress_days: Annotated[
        float | None, typer.Option(min=0.1, help="Move every story into one window of N days.")
    ] = None,
    jitter_hours: Annotated[float | None, typer.Option(min=0.0, help="Disturb arrival order by up to N hours.")] = None,
    shuffle: Annotated[bool, typer.Option(help="Random order, timestamps removed.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the variants' randomness.")] = 7,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000, help="Articles per ingest call.")] = 1,
    level: Annotated[
        Level,
        typer.Option(
            help="Threads against the labels as given, or story clusters against the labels cut into events "
            "where a story goes quiet for more than 14 days."
        ),
    ] = Level.thread,
) -> None:
    """Cluster a labelled file in a fresh temporary database and score it."""
    from evaluation import variants
    from evaluation.evaluate import evaluate as run
    from evaluation.evaluate import read_jsonl

    rows = read_jsonl(file)
    if level is Level.event:
        rows = variants.events(rows)  # cut on the dates as published, before any variant moves them
    ordered = False
    if wrap:
        rows = variants.wrap(rows, seed=seed)
    if compress_days is not None:
        rows = variants.compress(rows, compress_days, seed=seed)
    if jitter_hours is not None:
        rows, ordered = variants.jitter_order(rows, jitter_hours, seed=seed), True
    if shuffle:
        rows, ordered = variants.shuffle(rows, seed=seed), True
    report = run(rows, batch_size=batch_size, ordered=ordered, threads=level is Level.thread)
    data = report.as_dict()
    variant = {
        "level": level.value,
        "wrap": wrap,
        "compress_days": compress_days,
        "jitter_hours": jitter_hours,
        "shuffle": shuffle,
    }
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
    output: Annotated[Path | None, typer.Option(help="Where to write (default: the shipped decision.json).")] = None,
) -> None:
    """Fit the story-join model and threshold on labelled news."""
    from clustering.assign import MODEL_PATH
    from evaluation import calibrate as fitting
    from evaluation.evaluate import read_jsonl

    calibration = fitting.calibrate(read_jsonl(file))
    fitting.write(calibration, output or MODEL_PATH)
    typer.echo(json.dumps(calibration))


def _when(value: str | None) -> datetime | None:
    """An ISO 8601 time as the list endpoint reads it; without a zone it is UTC."""
    if value is None:
        return None
    try:
        parsed = TypeAdapter(datetime).validate_python(value)
    except ValidationError:
        raise typer.BadParameter(f"not an ISO 8601 time: {value!r} (e.g. 2024-06-18 or 2024-06-18T22:00:00Z)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


@cli.command()
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default standard output).")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="jsonl: one cluster a line; csv: one row per article.")
    ] = "jsonl",
    since: Annotated[str | None, typer.Option(help="Clusters with an article published at or after this time.")] = None,
    until: Annotated[
        str | None, typer.Option(help="Clusters with an article published at or before this time.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Clusters with an article from this source.")] = None,
    q: Annotated[str | None, typer.Option(help="Clusters whose title or keywords contain this text.")] = None,
    min_articles: Annotated[int, typer.Option(min=1, help="Clusters with at least this many articles.")] = 1,
    sort: Annotated[str, typer.Option(help="latest (newest last_published_at first) or largest.")] = "latest",
    corrections: Annotated[
        bool,
        typer.Option(
            "--corrections",
            help="Write instead every article of the stories editors corrected, labelled by its story, in "
            "the labelled JSONL that `stories evaluate` scores.",
        ),
    ] = False,
) -> None:
    """Write clusters with their articles as JSONL (or CSV), filtered like GET /v1/clusters;
    with --corrections, the stories editors corrected as labelled articles.

    A file given with --output appears complete or not at all.
    """
    from app import export as exporting
    from app.store import listing
    from app.store.db import make_engine, make_sessionmaker

    if fmt not in exporting.FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(exporting.FORMATS)}", param_hint="--format")
    if corrections and fmt != "jsonl":
        raise typer.BadParameter("labelled articles are written as jsonl only", param_hint="--format")
    if sort not in listing.SORTS:
        raise typer.BadParameter(f"must be one of {', '.join(listing.SORTS)}", param_hint="--sort")
    filters = {
        "sort": sort,
        "since": _when(since),
        "until": _when(until),
        "source": source,
        "q": q,
        "min_articles": min_articles,
    }
    engine = make_engine(_settings(), writer=False)
    partial = output.with_name(output.name + ".partial") if output else None
    try:
        with ExitStack() as stack:
            out = stack.enter_context(partial.open("w", encoding="utf-8", newline="")) if partial else sys.stdout
            writer = exporting.Writer(out, fmt)
            session = stack.enter_context(make_sessionmaker(engine)())
            if corrections:
                stories: set[str] = set()
                for row in exporting.corrected(session=session):
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")
                    writer.articles += 1
                    stories.add(row["label"])
                writer.clusters = len(stories)
            else:
                for cluster in exporting.clusters(session=session, **filters):
                    writer.write(cluster)
        if partial:
            os.replace(partial, output)
    finally:
        engine.dispose()
        if partial and partial.exists():
            partial.unlink()
    typer.echo(f"{writer.clusters} clusters, {writer.articles} articles written", err=True)


@cli.command()
def prune(
    before: Annotated[str, typer.Option(help="Delete stories whose newest article is older than this ISO 8601 time.")],
    dry_run: Annotated[bool, typer.Option(help="Count what would go, delete nothing.")] = False,
) -> None:
    """Delete old stories with their articles, for retention; newer stories are untouched.

    A story goes whole or not at all: one with an article at or after --before stays.
    Running servers rebuild their caches before their next write.
    """
    from app.service.ingest import StoryService
    from app.store import crud
    from app.store import migrate as migrations
    from app.store.db import make_engine, make_sessionmaker

    cutoff = _when(before)
    settings = _settings()
    engine = make_engine(settings)
    try:
        migrations.require_head(engine)
        if dry_run:
            with make_sessionmaker(engine).begin() as session:
                pruned = crud.prune(session=session, before=cutoff)
                session.rollback()
            verb = "would delete"
        else:
            pruned = StoryService(make_sessionmaker(engine)).prune(cutoff)
            verb = "deleted"
    finally:
        engine.dispose()
    typer.echo(
        f"{verb} {pruned.stories} stories and {pruned.articles} articles last published before {cutoff.isoformat()}"
    )


def main() -> None:
    cli()
