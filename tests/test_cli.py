import json

import pytest
from typer.testing import CliRunner

from app.cli import cli

STORIES = {
    "flood": [
        "Heavy rain flooded the river port of Almora on Monday, forcing 3,000 residents from their homes. "
        "Mayor Lena Varga said the Almora river rose two metres overnight and rescue boats reached the old town.",
        "Rescue boats evacuated thousands of Almora residents after the river burst its banks on Monday. "
        "Mayor Lena Varga told reporters the old town of Almora was under water and shelters were full.",
    ],
    "election": [
        "Voters in the republic of Tessaly elected Marco Ilves president on Sunday with 54 percent of the vote, "
        "the central election commission in Kovno announced. Ilves promised lower fuel taxes.",
        "Marco Ilves won Tessaly's presidential election, the Kovno election commission said on Sunday, "
        "taking 54 percent after a campaign dominated by fuel taxes and pensions.",
    ],
}


@pytest.fixture
def labelled(tmp_path):
    path = tmp_path / "labelled.jsonl"
    with path.open("w") as handle:
        n = 0
        for label, texts in STORIES.items():
            for text in texts:
                n += 1
                row = {
                    "id": f"t:{n}",
                    "title": None,
                    "text": text,
                    "source": f"outlet{n}.example",
                    "published_at": f"2025-03-0{n}T08:00:00",
                    "url": f"https://outlet{n}.example/{label}",
                    "label": label,
                    "lang": "en",
                }
                handle.write(json.dumps(row) + "\n")
    return path


@pytest.fixture
def database(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("STORIES_DATABASE_URL", url)
    return url


def test_migrate_brings_a_new_database_to_head(database):
    result = CliRunner().invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "database at revision" in result.output


def test_ingest_stores_articles_and_is_idempotent(database, labelled):
    first = CliRunner().invoke(cli, ["ingest", str(labelled), "--batch-size", "3"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout.strip().splitlines()[-1]) == {"created": 4, "existing": 0, "rejected": 0}
    second = CliRunner().invoke(cli, ["ingest", str(labelled)])
    assert json.loads(second.stdout.strip().splitlines()[-1]) == {"created": 0, "existing": 4, "rejected": 0}


def test_ingest_reports_bad_lines_and_keeps_good_ones(database, tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = {"external_id": "ok", "text": STORIES["flood"][0]}
    path.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({"external_id": "empty", "text": " "}) + "\n")
    result = CliRunner().invoke(cli, ["ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"created": 1, "existing": 0, "rejected": 2}


def test_evaluate_scores_a_labelled_file(database, labelled):
    result = CliRunner().invoke(cli, ["evaluate", str(labelled)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["articles"] == 4 and report["gold_stories"] == 2
    assert report["bcubed_f1"] == 1.0
    assert report["clusters"] == 2


def test_export_writes_each_cluster_with_its_articles(database, labelled, tmp_path):
    CliRunner().invoke(cli, ["ingest", str(labelled)])
    out = tmp_path / "export.jsonl"
    result = CliRunner().invoke(cli, ["export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["article_count"] for r in records) == [2, 2]
    assert sum(len(r["articles"]) for r in records) == 4


def test_evaluate_at_event_level_cuts_a_story_where_it_goes_quiet(database, tmp_path):
    path = tmp_path / "quiet.jsonl"
    dates = ["2025-03-01", "2025-03-02", "2025-04-20", "2025-04-21"]  # 49 quiet days between
    texts = STORIES["flood"] + STORIES["flood"]
    rows = [
        {
            "id": f"q:{i}",
            "title": None,
            "text": text,
            "source": f"outlet{i}.example",
            "published_at": f"{day}T08:00:00",
            "label": "flood",
        }
        for i, (day, text) in enumerate(zip(dates, texts))
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    thread = json.loads(CliRunner().invoke(cli, ["evaluate", str(path)]).stdout.strip().splitlines()[-1])
    event = json.loads(
        CliRunner().invoke(cli, ["evaluate", str(path), "--level", "event"]).stdout.strip().splitlines()[-1]
    )
    assert thread["gold_stories"] == 1 and thread["level"] == "thread"
    assert event["gold_stories"] == 2 and event["level"] == "event"
