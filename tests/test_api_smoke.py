from tests.factories import article


def test_posted_article_is_stored_and_readable(client):
    response = client.post("/v1/articles", json=article())
    assert response.status_code == 201
    created = response.json()
    stored = client.get(f"/v1/articles/{created['id']}").json()
    assert stored["cluster_id"] == created["cluster_id"]
    assert stored["published_at"] == "2024-06-18T22:00:00Z"


def test_html_with_no_extractable_text_is_rejected_and_stores_nothing(client):
    response = client.post("/v1/articles", json=article(text=None, html="<html><body><div></div></body></html>"))
    assert response.status_code == 422
    assert "no article text" in response.json()["error"]["message"]
    assert client.get("/v1/clusters").json()["clusters"] == []


def test_batch_item_that_is_not_an_object_gets_its_own_error(client):
    results = client.post("/v1/articles/batch", json={"articles": [5, article()]}).json()["results"]
    assert results[0]["status"] == "error"
    assert results[0]["error"]["message"] == "each article must be a JSON object"
    assert results[1]["status"] == "created"
