"""DELETE /v1/articles/{id}: takedown removes an article from its story and updates the summary."""

from fastapi.testclient import TestClient

from app.api.factory import create_app
from app.config import Settings
from tests.factories import article

COPY = {"url": "https://wire.example.org/putin-pyongyang", "source": "wire.example.org"}
OTHER = article(
    url="https://other.example.net/story",
    source="other.example.net",
    title="Putin lands in Pyongyang as Kim Jong Un greets him at the airport",
    text=(
        "Kim Jong Un met Russian President Vladimir Putin at Pyongyang airport late on Tuesday, state media in "
        "North Korea reported, as the two leaders prepared to sign a partnership agreement on security.\n"
        "Putin's first trip to North Korea in 24 years comes as Washington and Seoul accuse Pyongyang of sending "
        "artillery shells and missiles to Russia for its war in Ukraine."
    ),
)


def _post(client, body):
    response = client.post("/v1/articles", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_takedown_removes_the_article_and_updates_its_story(client):
    first = _post(client, article())
    second = _post(client, OTHER)
    assert second["cluster_id"] == first["cluster_id"]
    response = client.delete(f"/v1/articles/{second['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": second["id"], "cluster_id": first["cluster_id"], "status": "deleted"}
    assert client.get(f"/v1/articles/{second['id']}").status_code == 404
    story = client.get(f"/v1/clusters/{first['cluster_id']}").json()
    assert story["article_count"] == 1
    assert [a["id"] for a in story["articles"]] == [first["id"]]
    assert [s["name"] for s in story["sources"]] == ["news.example.com"]


def test_story_left_empty_disappears_from_listings(client):
    only = _post(client, article())
    assert client.delete(f"/v1/articles/{only['id']}").status_code == 200
    assert client.get("/v1/clusters").json()["clusters"] == []
    assert client.get(f"/v1/clusters/{only['cluster_id']}").status_code == 404


def test_copies_of_a_taken_down_original_point_at_the_earliest_remaining_copy(client):
    original = _post(client, article())
    copy_one = _post(client, article(**COPY))
    copy_two = _post(client, article(url="https://mirror.example.com/p", source="mirror.example.com"))
    assert copy_one["duplicate_of"] == original["id"] and copy_two["duplicate_of"] == original["id"]
    client.delete(f"/v1/articles/{original['id']}")
    assert client.get(f"/v1/articles/{copy_one['id']}").json()["duplicate_of"] is None
    assert client.get(f"/v1/articles/{copy_two['id']}").json()["duplicate_of"] == copy_one["id"]
    late_copy = _post(client, article(url="https://late.example.com/p", source="late.example.com"))
    assert late_copy["duplicate_of"] == copy_one["id"]


def test_taking_down_an_unknown_article_is_404(client):
    response = client.delete("/v1/articles/12345")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_takedown_needs_the_write_key(database_url):
    with TestClient(create_app(Settings(database_url=database_url, api_key="secret-key"))) as client:
        created = client.post("/v1/articles", json=article(), headers={"Authorization": "Bearer secret-key"}).json()
        assert client.delete(f"/v1/articles/{created['id']}").status_code == 401
        ok = client.delete(f"/v1/articles/{created['id']}", headers={"Authorization": "Bearer secret-key"})
        assert ok.status_code == 200


def test_takedown_survives_a_restart(settings):
    with TestClient(create_app(settings)) as client:
        original = _post(client, article())
        client.delete(f"/v1/articles/{original['id']}")
    with TestClient(create_app(settings)) as client:
        again = _post(client, article(url="https://again.example.com/p", source="again.example.com"))
        assert again["duplicate_of"] is None
        assert again["cluster_id"] != original["cluster_id"]


def test_a_takedown_by_one_process_is_seen_by_another_on_the_same_database(settings):
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        original = _post(one, article())
        copy = _post(two, article(**COPY))
        assert copy["duplicate_of"] == original["id"]
        assert one.delete(f"/v1/articles/{original['id']}").status_code == 200
        late = _post(two, article(url="https://late.example.com/p", source="late.example.com"))
        assert late["duplicate_of"] == copy["id"]
        assert late["cluster_id"] == copy["cluster_id"]


def test_the_id_of_a_taken_down_article_is_never_handed_out_again(client):
    first = _post(client, article())
    newest = _post(client, OTHER)
    client.delete(f"/v1/articles/{newest['id']}")
    client.delete(f"/v1/articles/{first['id']}")
    again = _post(client, article(url="https://news.example.com/again"))
    assert again["id"] > newest["id"]
    assert again["cluster_id"] > first["cluster_id"]
