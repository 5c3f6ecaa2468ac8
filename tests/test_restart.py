"""The database is the only source of truth: a new process serves the same data and rebuilds
its in-memory indexes (near-duplicates, story vectors, source templates) from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app.api.factory import create_app
from app.config import Settings
from app.store import crud
from clustering import embed

DAM = [
    {
        "url": "https://valleypress.example/news/orlen-dam-spillway",
        "source": "valleypress.example",
        "published_at": "2024-09-02T07:20:00Z",
        "title": "Engineers open Orlen Dam spillway as reservoir nears capacity",
        "text": (
            "Engineers opened the emergency spillway of the Orlen Dam on Monday after four days of heavy rain "
            "pushed the reservoir to 98 percent of capacity, and ordered residents of low-lying streets in "
            "Brisholm to move to higher ground.\n"
            "The regional water authority said the release would raise the River Tamsen by up to a metre "
            "downstream. Its chief engineer, Farida Nwosu, said the dam itself was sound and the controlled "
            "release was a precaution.\n"
            "About 600 households in Brisholm and the village of Kettering Mill were told to leave by nightfall. "
            "Emergency shelters opened at the Brisholm sports centre."
        ),
    },
    {
        "url": "https://northerncourier.example/2024/09/02/brisholm-evacuated-orlen-dam",
        "source": "northerncourier.example",
        "published_at": "2024-09-02T12:45:00Z",
        "title": "Brisholm residents leave homes as Orlen Dam releases water",
        "text": (
            "Hundreds of families in Brisholm packed cars and left their homes on Monday as water poured down "
            "the spillway of the Orlen Dam, swollen by days of rain.\n"
            "Farida Nwosu of the regional water authority told reporters the reservoir was almost full and that "
            "opening the spillway was safer than waiting. The River Tamsen was expected to rise sharply through "
            "Brisholm and Kettering Mill overnight.\n"
            "Volunteers at the sports centre shelter handed out blankets and hot food to evacuated residents."
        ),
    },
]

# An independent report of the dam story, posted only after the restart.
DAM_AFTER_RESTART = {
    "url": "https://riverlandsradio.example/orlen-dam-tamsen-flood-warning",
    "source": "riverlandsradio.example",
    "published_at": "2024-09-03T06:00:00Z",
    "title": "River Tamsen rises at Brisholm after Orlen Dam spillway opened",
    "text": (
        "The River Tamsen burst its banks in parts of Brisholm early on Tuesday, hours after engineers opened "
        "the spillway of the Orlen Dam to relieve the swollen reservoir.\n"
        "The regional water authority said the water level at Kettering Mill had risen by 80 centimetres. "
        "Chief engineer Farida Nwosu said the dam was performing as designed and that releases would continue "
        "until the reservoir fell below 90 percent.\n"
        "Evacuated residents spent the night at the Brisholm sports centre."
    ),
}

SUMMIT = [
    {
        "url": "https://globaldesk.example/politics/tarvia-lund-trade-summit",
        "source": "globaldesk.example",
        "published_at": "2024-09-04T15:00:00Z",
        "title": "Tarvia and Lundmark sign grain and fertiliser trade pact",
        "text": (
            "The leaders of Tarvia and Lundmark signed a trade agreement on Wednesday that cuts tariffs on grain, "
            "fertiliser and farm machinery, ending a dispute that had closed the border to lorries for months.\n"
            "President Ilse Varga of Tarvia and Prime Minister Otto Brandvik of Lundmark met in the border city "
            "of Sorrholm for the signing. Customs checks at the Sorrholm crossing will be cut to a single "
            "inspection from October.\n"
            "Farmers' groups in both countries welcomed the pact, while hauliers said the queues at the border "
            "had cost them millions."
        ),
    },
]

CONCERT = [
    {
        "url": "https://culturebeat.example/music/aurelia-quartet-final-tour",
        "source": "culturebeat.example",
        "published_at": "2024-09-05T19:30:00Z",
        "title": "Aurelia Quartet announces farewell tour after 40 years",
        "text": (
            "The Aurelia Quartet, the string ensemble founded in Mereford in 1984, will disband after a farewell "
            "tour next spring, its members announced on Thursday.\n"
            "First violinist Hanne Sorvik said the four musicians wanted to stop while they still played at "
            "their best. The tour opens at Mereford Concert Hall in March and visits eighteen cities, ending "
            "with three nights of Beethoven's late quartets.\n"
            "The quartet has recorded more than 60 albums and won two international chamber music prizes. "
            "Tickets go on sale next month."
        ),
    },
]

# The Valley Press prints this line on every page; it is prose, not caught by any single-page rule.
GAZETTE_MOTTO = "The Valley Press has served the towns of the Tamsen valley with independent reporting since 1921."


@pytest.fixture
def restart(settings: Settings) -> Iterator:
    """Open the app on the test's database; call again to stop it and start a new one."""
    opened: list[TestClient] = []

    def _open() -> TestClient:
        if opened:
            opened[-1].__exit__(None, None, None)
        client = TestClient(create_app(settings))
        client.__enter__()
        opened.append(client)
        return client

    yield _open
    if opened:
        opened[-1].__exit__(None, None, None)


def post_all(client: TestClient) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {}
    for name, bodies in (("dam", DAM), ("summit", SUMMIT), ("concert", CONCERT)):
        for body in bodies:
            response = client.post("/v1/articles", json=body)
            assert response.status_code == 201, response.text
            results.setdefault(name, []).append(response.json())
    assert results["dam"][0]["cluster_id"] == results["dam"][1]["cluster_id"]
    assert len({r[0]["cluster_id"] for r in results.values()}) == 3
    return results


def all_clusters(client: TestClient) -> list[dict]:
    response = client.get("/v1/clusters", params={"limit": 200})
    assert response.status_code == 200
    return response.json()["clusters"]


def test_articles_survive_a_restart_with_the_same_ids_and_fields(restart):
    client = restart()
    results = post_all(client)
    before = {r["id"]: client.get(f"/v1/articles/{r['id']}").json() for rs in results.values() for r in rs}

    client = restart()

    after = {article_id: client.get(f"/v1/articles/{article_id}").json() for article_id in before}
    assert after == before


def test_clusters_survive_a_restart_with_the_same_ids_and_summaries(restart):
    client = restart()
    results = post_all(client)
    before = all_clusters(client)
    details = {c["id"]: client.get(f"/v1/clusters/{c['id']}").json() for c in before}

    client = restart()

    assert all_clusters(client) == before
    assert {c["id"]: client.get(f"/v1/clusters/{c['id']}").json() for c in before} == details
    assert {c["id"] for c in before} == {rs[0]["cluster_id"] for rs in results.values()}


def test_repost_after_restart_is_existing_with_the_same_ids(restart):
    client = restart()
    results = post_all(client)

    client = restart()
    again = client.post("/v1/articles", json={**SUMMIT[0], "url": SUMMIT[0]["url"] + "?utm_source=rss"})

    assert again.status_code == 200
    assert again.json() == {**results["summit"][0], "status": "existing"}


def test_new_writeup_after_restart_joins_its_stored_cluster(restart):
    client = restart()
    results = post_all(client)
    dam_cluster = results["dam"][0]["cluster_id"]

    client = restart()
    response = client.post("/v1/articles", json=DAM_AFTER_RESTART)

    assert response.status_code == 201
    created = response.json()
    assert created["cluster_id"] == dam_cluster
    assert created["duplicate_of"] is None
    assert created["id"] > max(r["id"] for rs in results.values() for r in rs)
    cluster = client.get(f"/v1/clusters/{dam_cluster}").json()
    assert cluster["article_count"] == 3
    assert cluster["last_published_at"] == DAM_AFTER_RESTART["published_at"]
    assert len(all_clusters(client)) == 3


def test_copy_posted_after_restart_is_duplicate_of_the_stored_original(restart):
    client = restart()
    results = post_all(client)
    original = results["concert"][0]

    client = restart()
    copy = client.post(
        "/v1/articles",
        json={
            **CONCERT[0],
            "url": "https://meregazette.example/arts/aurelia-quartet-to-disband",
            "source": "meregazette.example",
            "published_at": "2024-09-06T08:00:00Z",
        },
    )

    assert copy.status_code == 201
    assert copy.json()["duplicate_of"] == original["id"]
    assert copy.json()["cluster_id"] == original["cluster_id"]


def test_copy_of_a_copy_after_restart_points_to_the_first_original(restart):
    client = restart()
    results = post_all(client)
    original = results["summit"][0]
    first_copy = client.post(
        "/v1/articles", json={**SUMMIT[0], "url": "https://wire-a.example/pact", "source": "wire-a.example"}
    ).json()
    assert first_copy["duplicate_of"] == original["id"]

    client = restart()
    second_copy = client.post(
        "/v1/articles", json={**SUMMIT[0], "url": "https://wire-b.example/pact", "source": "wire-b.example"}
    ).json()

    assert second_copy["duplicate_of"] == original["id"]
    assert second_copy["cluster_id"] == original["cluster_id"]


def test_unrelated_article_after_restart_opens_a_new_cluster(restart):
    client = restart()
    results = post_all(client)

    client = restart()
    response = client.post(
        "/v1/articles",
        json={
            "url": "https://techbeat.example/space/kepler-ridge-telescope",
            "source": "techbeat.example",
            "published_at": "2024-09-05T09:00:00Z",
            "title": "Kepler Ridge observatory unveils largest telescope mirror",
            "text": (
                "Astronomers at the Kepler Ridge observatory unveiled an 8.4-metre telescope mirror on Thursday, "
                "the largest ever cast by the university's optical laboratory.\n"
                "The mirror took four years to polish and will be shipped to the observatory's mountain site "
                "next summer. Project scientist Ravi Menon said it would let researchers study the atmospheres "
                "of planets orbiting nearby stars."
            ),
        },
    )

    assert response.status_code == 201
    assert response.json()["cluster_id"] not in {rs[0]["cluster_id"] for rs in results.values()}
    assert len(all_clusters(client)) == 4


def test_source_template_lines_learned_before_restart_are_removed_after_it(restart):
    client = restart()
    first = client.post("/v1/articles", json={**DAM[0], "text": DAM[0]["text"] + "\n" + GAZETTE_MOTTO}).json()
    stored_first = client.get(f"/v1/articles/{first['id']}").json()
    assert GAZETTE_MOTTO in stored_first["text"]  # one page: the line is still content

    client = restart()
    page = {
        "url": "https://valleypress.example/news/tamsen-flood-defences",
        "source": "valleypress.example",
        "published_at": "2024-09-10T08:00:00Z",
        "title": "Council promises review of Tamsen flood defences",
        "text": (
            "Brisholm council promised on Tuesday to review flood defences along the River Tamsen after last "
            "week's evacuation, and to publish the findings before winter.\n" + GAZETTE_MOTTO
        ),
    }
    second = client.post("/v1/articles", json=page).json()

    stored = client.get(f"/v1/articles/{second['id']}").json()
    assert GAZETTE_MOTTO not in stored["text"]
    assert "review flood defences" in stored["text"]
    assert stored["removed_lines"].get("template", 0) >= 1


def test_readyz_is_ready_after_a_restart(restart):
    client = restart()
    post_all(client)
    client = restart()
    response = client.get("/readyz")
    assert response.status_code == 200
    assert all(response.json()["checks"].values())


def _stored_embeddings(settings: Settings) -> dict[int, bytes | None]:
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return dict(connection.execute(text("SELECT id, embedding FROM articles")).all())
    finally:
        engine.dispose()


def test_a_restart_rebuilds_the_index_from_stored_embeddings_without_the_encoder(restart, settings, monkeypatch):
    client = restart()
    post_all(client)
    stored = _stored_embeddings(settings)
    assert stored and all(value is not None and len(value) == 2 * embed.DIMENSIONS for value in stored.values())

    def refuse(*_args):
        raise AssertionError("a restart ran the encoder on a stored article")

    monkeypatch.setattr(embed, "embed", refuse)
    client = restart()
    assert client.get("/readyz").status_code == 200
    assert _stored_embeddings(settings) == stored


def _embeddings_after_tampering_and_restart(restart, settings, tamper) -> tuple[dict, dict]:
    """Stored embeddings before ``tamper(session)`` changes the database, and after a restart."""
    client = restart()
    post_all(client)
    stored = _stored_embeddings(settings)
    engine = create_engine(settings.database_url)
    with Session(engine) as session, session.begin():
        tamper(session)
    engine.dispose()
    client = restart()
    assert client.get("/readyz").status_code == 200
    return stored, _stored_embeddings(settings)


def test_articles_stored_without_embeddings_get_them_on_restart(restart, settings):
    settings.index_snapshot = "off"  # a database from before embeddings were stored has no index kept beside it

    def forget(session: Session) -> None:
        session.execute(text("UPDATE articles SET embedding = NULL"))

    before, after = _embeddings_after_tampering_and_restart(restart, settings, forget)
    assert after == before


def test_embeddings_recorded_under_another_encoder_are_made_again_on_restart(restart, settings):
    def another_encoder(session: Session) -> None:
        crud.put_setting(session=session, key="embedding_scheme", value={"model": "another-encoder"})
        session.execute(text("UPDATE articles SET embedding = :zeros"), {"zeros": bytes(2 * embed.DIMENSIONS)})

    before, after = _embeddings_after_tampering_and_restart(restart, settings, another_encoder)
    assert after == before
