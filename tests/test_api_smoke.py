from tests.factories import article


def test_posted_article_is_stored_and_readable(client):
    response = client.post("/v1/articles", json=article())
    assert response.status_code == 201
    created = response.json()
    stored = client.get(f"/v1/articles/{created['id']}").json()
    assert stored["cluster_id"] == created["cluster_id"]
    assert stored["published_at"] == "2024-06-18T22:00:00Z"
