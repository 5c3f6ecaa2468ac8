"""HTTP tests of the cluster endpoints: summaries, order, pagination, filters, one story."""

from __future__ import annotations

import base64
import json

import pytest
from fastapi.testclient import TestClient

from app.api.factory import create_app

# -- seven invented stories; ferry (3 outlets) and museum (2 outlets) have several reports ----

STORIES: dict[str, list[dict]] = {
    "ferry": [
        {
            "url": "https://islandtimes.example/news/kestrel-ferry-fire",
            "source": "islandtimes.example",
            "published_at": "2024-03-04T08:15:00Z",
            "title": "Passengers evacuated as fire breaks out on Kestrel Island ferry",
            "text": (
                "More than 200 passengers were evacuated from the ferry Morwenna Belle on Monday after a fire broke "
                "out in its engine room during the crossing from Kestrel Island to the mainland port of Haverleigh.\n"
                "The coastguard said lifeboats from Haverleigh and Saltmouth reached the stricken vessel within 20 "
                "minutes and transferred passengers to a second ferry. Three crew members were treated for smoke "
                "inhalation.\n"
                "Kestrel Ferries, which operates the route, said the crew had contained the fire using the ship's "
                "own sprinkler system and that all sailings to the island were cancelled until further notice."
            ),
        },
        {
            "url": "https://coastwire.example/uk/morwenna-belle-engine-fire",
            "source": "coastwire.example",
            "published_at": "2024-03-04T11:40:00Z",
            "title": "Kestrel Island sailings cancelled after engine fire on Morwenna Belle",
            "text": (
                "All sailings between Kestrel Island and Haverleigh were cancelled on Monday after an engine room "
                "fire forced the evacuation of the Morwenna Belle ferry in the middle of the crossing.\n"
                "Passengers described smoke pouring from the vents as crew handed out life jackets. Lifeboat crews "
                "from Haverleigh and Saltmouth ferried them to safety, and the coastguard said nobody was seriously "
                "hurt, although three crew members needed treatment for smoke.\n"
                "Kestrel Ferries said investigators from the marine accident branch would board the ship once it "
                "had been towed into Haverleigh harbour. Islanders warned that the cancellations would cut off "
                "deliveries of food and fuel."
            ),
        },
        {
            "url": "https://northpost.example/2024/03/05/kestrel-island-cut-off",
            "source": "northpost.example",
            "published_at": "2024-03-05T07:00:00Z",
            "title": "Kestrel Island cut off a day after Morwenna Belle ferry fire",
            "text": (
                "Kestrel Island remained cut off on Tuesday, a day after fire broke out aboard the Morwenna Belle "
                "ferry and more than 200 passengers had to be taken off by lifeboats near Haverleigh.\n"
                "The island's only shop said fresh food would run out by the weekend. Kestrel Ferries said a "
                "replacement vessel was being chartered and that the Morwenna Belle, now in Haverleigh harbour, "
                "would be inspected by marine accident investigators before returning to service.\n"
                "The coastguard praised the crew and the Saltmouth lifeboat volunteers for the evacuation."
            ),
        },
    ],
    "rail": [
        {
            "url": "https://midlandsledger.example/transport/northfield-rail-strike",
            "source": "midlandsledger.example",
            "published_at": "2024-03-06T06:30:00Z",
            "title": "Northfield commuter rail drivers walk out in pay dispute",
            "text": (
                "Train drivers on the Northfield commuter network began a 48-hour strike on Wednesday, leaving "
                "thousands of commuters without services into the city centre.\n"
                "The drivers' union, ASLEF North, said its members had rejected a 3 percent pay offer from operator "
                "Northfield Rail as far below inflation. Only a skeleton timetable ran on the Greenway and "
                "Pennine lines, with buses replacing trains elsewhere.\n"
                "Northfield Rail managing director Colin Ashdown urged the union to return to talks and said the "
                "company could not afford a larger settlement without raising fares."
            ),
        },
    ],
    "museum": [
        {
            "url": "https://artdesk.example/news/vessberg-museum-theft",
            "source": "artdesk.example",
            "published_at": "2024-03-08T09:00:00Z",
            "title": "Thieves steal Elsinore landscape from Vessberg Museum of Fine Art",
            "text": (
                "Thieves broke into the Vessberg Museum of Fine Art overnight and stole an 18th-century landscape by "
                "the painter Johanna Elsinore, police said on Friday.\n"
                "The intruders smashed a skylight above the east gallery shortly after 3am and lowered themselves "
                "on ropes, avoiding the motion sensors. The painting, Winter Harbour at Dusk, is insured for "
                "about 4 million euros.\n"
                "Museum director Pieter Valk called the theft a loss for the whole city and appealed for anyone "
                "offered the canvas to contact the police art crime unit."
            ),
        },
        {
            "url": "https://vessbergdaily.example/city/painting-stolen-skylight",
            "source": "vessbergdaily.example",
            "published_at": "2024-03-08T15:20:00Z",
            "title": "Police hunt skylight gang after Elsinore painting stolen in Vessberg",
            "text": (
                "Police in Vessberg are hunting a gang who climbed through a museum skylight and escaped with Winter "
                "Harbour at Dusk, the best-known work by Johanna Elsinore.\n"
                "Detectives from the art crime unit said the thieves knew exactly where the cameras in the east "
                "gallery pointed. A night guard at the Vessberg Museum of Fine Art raised the alarm but the gang "
                "had fled by car.\n"
                "Director Pieter Valk said the museum would review its security and thanked visitors for messages "
                "of support."
            ),
        },
    ],
    "rates": [
        {
            "url": "https://marketsdaily.example/economy/carrowmore-rate-rise",
            "source": "marketsdaily.example",
            "published_at": "2024-03-10T12:00:00Z",
            "title": "Bank of Carrowmore raises interest rate to 5.25 percent",
            "text": (
                "The Bank of Carrowmore raised its benchmark interest rate by a quarter point to 5.25 percent on "
                "Sunday, its fourth increase in a year, as consumer prices kept climbing faster than forecast.\n"
                "Governor Elena Mirchev said inflation of 6.1 percent in February was too high and that the "
                "monetary policy committee stood ready to tighten further. Two of the seven committee members "
                "voted to hold rates.\n"
                "The Carrowmore crown strengthened against the dollar after the decision, while mortgage lenders "
                "warned that monthly repayments would rise again for households on variable deals."
            ),
        },
    ],
    "wildfire": [
        {
            "url": "https://southernobserver.example/environment/serrano-valley-wildfire",
            "source": "southernobserver.example",
            "published_at": "2024-03-12T18:45:00Z",
            "title": "Wildfire forces evacuation of villages in Serrano Valley",
            "text": (
                "Firefighters battled a fast-moving wildfire in the Serrano Valley on Tuesday as strong winds "
                "pushed the flames towards three hillside villages, forcing about 1,500 residents from their homes.\n"
                "Regional fire chief Marta Quiroga said six water-bombing aircraft and more than 400 firefighters "
                "were deployed, but gusts of up to 70 kilometres an hour made the blaze hard to contain.\n"
                "The fire has burned roughly 3,000 hectares of pine forest and olive groves since it started on "
                "Sunday. Authorities closed the valley road and opened emergency shelters in the town of Aldoria."
            ),
        },
    ],
    "football": [
        {
            "url": "https://sportsroundup.example/football/ellery-rovers-new-manager",
            "source": "sportsroundup.example",
            "published_at": "2024-03-14T16:30:00Z",
            "title": "Ellery Rovers appoint Tomasz Brenner as head coach",
            "text": (
                "Ellery Rovers have appointed Tomasz Brenner as head coach on a contract until 2027, a fortnight "
                "after sacking his predecessor following a run of six league defeats.\n"
                "Brenner, 44, led Dunmore Athletic to promotion last season with an attacking style built on "
                "pressing high up the pitch. He takes charge with Rovers two points above the relegation zone and "
                "eleven matches left to play.\n"
                "Club chairman Ian Pollard said Brenner's record with young players had convinced the board. His "
                "first match in the dugout is the derby against Marrow City on Saturday."
            ),
        },
    ],
    "breach": [
        {
            "url": "https://techbeat.example/security/pellmark-customer-data-breach",
            "source": "techbeat.example",
            "published_at": "2024-03-16T10:10:00Z",
            "title": "Pellmark warns 2 million customers after hackers access loyalty database",
            "text": (
                "Retailer Pellmark has told about 2 million customers that hackers accessed its loyalty card "
                "database, exposing names, email addresses and purchase histories.\n"
                "The company said attackers used stolen credentials belonging to a software supplier to reach the "
                "system in late February. Payment card numbers are stored separately and were not affected, "
                "according to chief executive Dana Whitcombe.\n"
                "Pellmark has reset all loyalty account passwords and reported the incident to the data protection "
                "regulator. Security researchers advised customers to watch for phishing emails that appear to "
                "come from the retailer."
            ),
        },
    ],
}

NEWEST_FIRST = ["breach", "football", "wildfire", "rates", "museum", "rail", "ferry"]
SUMMARY_FIELDS = {
    "id",
    "thread_id",
    "title",
    "summary",
    "article_count",
    "source_count",
    "sources",
    "keywords",
    "first_published_at",
    "last_published_at",
    "updated_at",
    "representative_article_id",
}


def post_stories(client: TestClient) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Post every story's articles in date order; (cluster id, article ids) per story."""
    clusters: dict[str, int] = {}
    articles: dict[str, list[int]] = {}
    for name in reversed(NEWEST_FIRST):
        for body in STORIES[name]:
            response = client.post("/v1/articles", json=body)
            assert response.status_code == 201, response.text
            result = response.json()
            articles.setdefault(name, []).append(result["id"])
            clusters.setdefault(name, result["cluster_id"])
            assert result["cluster_id"] == clusters[name], f"{name} split over clusters"
    assert len(set(clusters.values())) == len(STORIES), "distinct stories share a cluster"
    return clusters, articles


@pytest.fixture
def stories(client: TestClient) -> tuple[dict[str, int], dict[str, list[int]]]:
    return post_stories(client)


def listed(client: TestClient, **params) -> list[dict]:
    response = client.get("/v1/clusters", params=params)
    assert response.status_code == 200, response.text
    return response.json()["clusters"]


def names_of(clusters: list[dict], ids: dict[str, int]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[c["id"]] for c in clusters]


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# -- GET /v1/clusters ----------------------------------------------------------------


def test_empty_database_lists_no_clusters(client):
    assert client.get("/v1/clusters").json() == {"clusters": [], "next_cursor": None}


def test_each_story_is_one_cluster_with_its_article_count(client, stories):
    ids, _ = stories
    clusters = {c["id"]: c for c in listed(client, limit=50)}
    assert set(clusters) == set(ids.values())
    for name, cluster_id in ids.items():
        assert clusters[cluster_id]["article_count"] == len(STORIES[name])


def test_cluster_summary_has_every_field(client, stories):
    ids, articles = stories
    ferry = next(c for c in listed(client) if c["id"] == ids["ferry"])

    assert SUMMARY_FIELDS <= set(ferry)
    assert ferry["title"] in [a["title"] for a in STORIES["ferry"]]
    assert ferry["summary"] and isinstance(ferry["summary"], str)
    assert ferry["article_count"] == 3
    assert ferry["source_count"] == 3
    assert sorted(s["name"] for s in ferry["sources"]) == sorted(a["source"] for a in STORIES["ferry"])
    assert all(s["articles"] == 1 for s in ferry["sources"])
    assert ferry["keywords"] and all(isinstance(k, str) for k in ferry["keywords"])
    assert any(k in ("kestrel", "ferry", "morwenna", "haverleigh") for k in ferry["keywords"])
    assert ferry["first_published_at"] == "2024-03-04T08:15:00Z"
    assert ferry["last_published_at"] == "2024-03-05T07:00:00Z"
    assert ferry["updated_at"]
    assert ferry["representative_article_id"] in articles["ferry"]


def test_clusters_are_listed_newest_last_published_first_by_default(client, stories):
    ids, _ = stories
    assert names_of(listed(client), ids) == NEWEST_FIRST
    assert names_of(listed(client, sort="latest"), ids) == NEWEST_FIRST


def test_late_article_moves_its_cluster_to_the_top(client, stories):
    ids, _ = stories
    follow_up = {
        "url": "https://islandtimes.example/news/kestrel-ferry-service-resumes",
        "source": "islandtimes.example",
        "published_at": "2024-03-18T09:00:00Z",
        "title": "Kestrel Island ferry service resumes after Morwenna Belle fire",
        "text": (
            "Ferry sailings between Kestrel Island and Haverleigh resumed on Monday, two weeks after the engine "
            "room fire on the Morwenna Belle forced the evacuation of more than 200 passengers.\n"
            "Kestrel Ferries has chartered a replacement vessel while the Morwenna Belle stays in Haverleigh "
            "harbour for repairs. Marine accident investigators said their report into the fire would be "
            "published in the summer. Islanders welcomed the return of deliveries to the island shop."
        ),
    }
    result = client.post("/v1/articles", json=follow_up).json()
    assert result["cluster_id"] == ids["ferry"]
    assert names_of(listed(client), ids)[0] == "ferry"


FOLLOW_UP = {
    "url": "https://islandtimes.example/news/kestrel-ferry-inquiry",
    "source": "islandtimes.example",
    "published_at": "2024-03-18T10:00:00Z",
    "title": "Inquiry opens into Morwenna Belle ferry fire off Kestrel Island",
    "text": (
        "Marine accident investigators boarded the Morwenna Belle in Haverleigh harbour on Monday to find "
        "out how fire broke out in the ferry's engine room during the crossing from Kestrel Island.\n"
        "Kestrel Ferries said it would cooperate fully. More than 200 passengers were taken off by lifeboats "
        "from Haverleigh and Saltmouth on Monday, and sailings to the island remain cancelled."
    ),
}


def test_a_repeated_page_is_served_again_byte_for_byte(client, stories):
    pages = client.app.state.pages
    first = client.get("/v1/clusters", params={"limit": 3})
    kept = pages.kept_
    again = client.get("/v1/clusters", params={"limit": 3})
    assert again.status_code == 200 and again.headers["content-type"] == "application/json"
    assert again.content == first.content
    assert pages.kept_ == kept + 1


def test_a_kept_page_on_sqlite_is_answered_without_a_worker_thread(client, stories, monkeypatch):
    import app.api.deps
    import app.api.pages

    hops = []
    for module in (app.api.deps, app.api.pages):
        passed = module.run_in_threadpool

        async def counted(func, *args, _passed=passed, **kwargs):
            hops.append(func)
            return await _passed(func, *args, **kwargs)

        monkeypatch.setattr(module, "run_in_threadpool", counted)
    ids, _ = stories
    first = client.get(f"/v1/clusters/{ids['ferry']}")
    assert len(hops) == (1 if client.app.state.settings.is_sqlite else 2)  # rendering; PostgreSQL: the position too
    hops.clear()
    assert client.get(f"/v1/clusters/{ids['ferry']}").content == first.content
    assert len(hops) == (0 if client.app.state.settings.is_sqlite else 1)


def test_a_kept_page_is_not_served_once_an_article_is_stored(client, stories):
    ids, _ = stories
    assert names_of(listed(client), ids)[0] != "ferry"
    result = client.post("/v1/articles", json=FOLLOW_UP).json()
    assert result["cluster_id"] == ids["ferry"]
    assert names_of(listed(client), ids)[0] == "ferry"
    assert next(c for c in listed(client, limit=50) if c["id"] == ids["ferry"])["article_count"] == 4


def test_a_kept_story_view_is_not_served_once_an_article_is_taken_down(client, stories):
    ids, articles = stories
    before = client.get(f"/v1/clusters/{ids['ferry']}").json()
    assert before["article_count"] == 3
    assert client.delete(f"/v1/articles/{articles['ferry'][0]}").status_code == 200
    after = client.get(f"/v1/clusters/{ids['ferry']}").json()
    assert after["article_count"] == 2
    assert articles["ferry"][0] not in [a["id"] for a in after["articles"]]


def test_sort_largest_lists_clusters_with_most_articles_first(client, stories):
    ids, _ = stories
    order = names_of(listed(client, sort="largest"), ids)
    assert order[:2] == ["ferry", "museum"]
    counts = [c["article_count"] for c in listed(client, sort="largest")]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("sort", ["latest", "largest"])
def test_cursor_pagination_returns_each_cluster_exactly_once(client, stories, sort):
    ids, _ = stories
    seen: list[int] = []
    pages = 0
    cursor = None
    while True:
        params = {"limit": 2, "sort": sort, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/clusters", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["clusters"]) <= 2
        seen.extend(c["id"] for c in page["clusters"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    assert pages == 4
    assert len(seen) == len(set(seen)) == 7
    assert seen == [c["id"] for c in listed(client, sort=sort, limit=50)]


def test_last_page_has_null_next_cursor(client, stories):
    page = client.get("/v1/clusters", params={"limit": 7}).json()
    assert len(page["clusters"]) == 7
    assert page["next_cursor"] is None


def test_limit_caps_the_page_and_gives_a_cursor(client, stories):
    page = client.get("/v1/clusters", params={"limit": 3}).json()
    assert len(page["clusters"]) == 3
    assert isinstance(page["next_cursor"], str) and page["next_cursor"]


GARBAGE_CURSORS = [
    pytest.param("latest", "garbage", id="not-base64-json"),
    pytest.param("latest", "!!!!", id="punctuation"),
    pytest.param("latest", cursor_of({"sort": "latest"}), id="json-object"),
    pytest.param("latest", cursor_of(["latest", "not a date", 3]), id="bad-timestamp"),
    pytest.param("latest", cursor_of(["latest", None, 3]), id="null-timestamp"),
    pytest.param("latest", cursor_of(["latest", "2024-03-10T12:00:00+00:00", "3"]), id="string-id"),
    pytest.param("largest", cursor_of(["largest", "2", 3]), id="string-count"),
    pytest.param("largest", cursor_of(["latest", "2024-03-10T12:00:00+00:00", 3]), id="other-sort-order"),
    pytest.param("largest", cursor_of(["largest", True, 3]), id="boolean-count"),
    pytest.param("largest", cursor_of(["largest", 10**30, 3]), id="huge-count"),
    pytest.param("latest", cursor_of(["latest", "2024-03-10T12:00:00+00:00", 10**30]), id="huge-cluster-id"),
]


@pytest.mark.parametrize(("sort", "cursor"), GARBAGE_CURSORS)
def test_garbage_cursor_is_422_json_error(settings, sort, cursor):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        post_stories(client)
        response = client.get("/v1/clusters", params={"sort": sort, "cursor": cursor, "limit": 2})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"
    assert "cursor" in response.json()["error"]["message"]


def test_cursor_from_one_sort_order_is_refused_by_the_other(client, stories):
    cursor = client.get("/v1/clusters", params={"limit": 2, "sort": "latest"}).json()["next_cursor"]
    response = client.get("/v1/clusters", params={"limit": 2, "sort": "largest", "cursor": cursor})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "alphabetical"}, "sort"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"since": "last week"}, "since"),
        ({"until": "soon"}, "until"),
        ({"min_articles": 0}, "min_articles"),
        ({"q": "x" * 201}, "q"),
    ],
    ids=[
        "unknown-sort",
        "zero-limit",
        "limit-over-max",
        "limit-not-int",
        "bad-since",
        "bad-until",
        "zero-min-articles",
        "q-too-long",
    ],
)
def test_invalid_list_parameter_is_422_json_error_naming_it(client, params, field):
    response = client.get("/v1/clusters", params=params)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["field"] == field
    assert field in error["message"]


def test_out_of_range_min_articles_is_not_a_server_error(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/clusters", params={"min_articles": 10**20})
    assert response.status_code < 500, response.text


# -- filters -------------------------------------------------------------------------


def test_since_keeps_clusters_active_on_or_after_it(client, stories):
    ids, _ = stories
    assert names_of(listed(client, since="2024-03-11T00:00:00Z"), ids) == ["breach", "football", "wildfire"]


def test_since_includes_a_cluster_whose_last_article_is_after_it(client, stories):
    ids, _ = stories
    # ferry began on 03-04 but its last report is 03-05 07:00
    assert "ferry" in names_of(listed(client, since="2024-03-05T00:00:00Z"), ids)
    assert "ferry" not in names_of(listed(client, since="2024-03-05T07:00:01Z"), ids)


def test_since_with_a_utc_offset_is_compared_in_utc(client, stories):
    ids, _ = stories
    # 2024-03-16T12:00+02:00 is 10:00Z: the breach story (10:10Z) is after it
    assert names_of(listed(client, since="2024-03-16T12:00:00+02:00"), ids) == ["breach"]
    assert names_of(listed(client, since="2024-03-16T10:20:00+00:00"), ids) == []


def test_until_keeps_clusters_started_on_or_before_it(client, stories):
    ids, _ = stories
    assert names_of(listed(client, until="2024-03-07T00:00:00Z"), ids) == ["rail", "ferry"]


def test_since_and_until_together_select_a_window(client, stories):
    ids, _ = stories
    window = listed(client, since="2024-03-07T00:00:00Z", until="2024-03-13T00:00:00Z")
    assert names_of(window, ids) == ["wildfire", "rates", "museum"]


def test_source_filter_keeps_clusters_with_an_article_from_that_source(client, stories):
    ids, _ = stories
    assert names_of(listed(client, source="northpost.example"), ids) == ["ferry"]
    assert names_of(listed(client, source="techbeat.example"), ids) == ["breach"]
    assert listed(client, source="nobody.example") == []


def test_q_filter_matches_title_words_case_insensitively(client, stories):
    ids, _ = stories
    assert names_of(listed(client, q="Elsinore"), ids) == ["museum"]
    assert names_of(listed(client, q="WILDFIRE"), ids) == ["wildfire"]
    assert listed(client, q="submarine") == []


def test_q_filter_matches_keywords(client, stories):
    ids, _ = stories
    ferry = next(c for c in listed(client) if c["id"] == ids["ferry"])
    keyword = next(k for k in ferry["keywords"] if k not in ferry["title"].lower())
    assert ids["ferry"] in [c["id"] for c in listed(client, q=keyword)]


def test_q_filter_treats_percent_and_underscore_literally(client, stories):
    assert listed(client, q="%") == []
    assert listed(client, q="_") == []


def test_q_filter_matches_non_ascii_title_case_insensitively(settings):
    body = {
        "url": "https://iberiannews.example/evora-hospital-wing",
        "source": "iberiannews.example",
        "published_at": "2024-03-20T10:00:00Z",
        "title": "\u00c9vora hospital opens new cancer treatment wing",
        "text": (
            "The regional hospital in \u00c9vora opened a new cancer treatment wing on Wednesday, doubling the "
            "number of radiotherapy machines available to patients in the Alentejo region.\n"
            "Hospital director Rui Fontes said the 22 million euro building would shorten waiting lists that "
            "had forced many patients to travel to Lisbon for treatment. The wing has 40 beds, two operating "
            "theatres and a day clinic for chemotherapy."
        ),
    }
    with TestClient(create_app(settings)) as client:
        cluster_id = client.post("/v1/articles", json=body).json()["cluster_id"]
        found = [c["id"] for c in listed(client, q="\u00e9vora")]
    assert found == [cluster_id]


def test_min_articles_keeps_only_clusters_that_large(client, stories):
    ids, _ = stories
    assert names_of(listed(client, min_articles=2), ids) == ["museum", "ferry"]
    assert names_of(listed(client, min_articles=3), ids) == ["ferry"]
    assert listed(client, min_articles=4) == []


def test_filters_combine(client, stories):
    ids, _ = stories
    assert names_of(listed(client, min_articles=2, since="2024-03-06T00:00:00Z"), ids) == ["museum"]
    assert names_of(listed(client, source="coastwire.example", q="kestrel"), ids) == ["ferry"]


def test_filtered_pagination_returns_each_match_once(client, stories):
    ids, _ = stories
    first = client.get("/v1/clusters", params={"since": "2024-03-07T00:00:00Z", "limit": 2}).json()
    second = client.get(
        "/v1/clusters", params={"since": "2024-03-07T00:00:00Z", "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    third = client.get(
        "/v1/clusters", params={"since": "2024-03-07T00:00:00Z", "limit": 2, "cursor": second["next_cursor"]}
    ).json()
    assert names_of(first["clusters"] + second["clusters"] + third["clusters"], ids) == NEWEST_FIRST[:5]
    assert third["next_cursor"] is None


# -- GET /v1/clusters/{id} -----------------------------------------------------------


def test_get_cluster_returns_summary_and_member_articles(client, stories):
    ids, articles = stories
    response = client.get(f"/v1/clusters/{ids['ferry']}")

    assert response.status_code == 200
    cluster = response.json()
    assert SUMMARY_FIELDS <= set(cluster)
    assert cluster["id"] == ids["ferry"]
    assert cluster["article_count"] == 3
    assert cluster.get("merged_into") is None
    members = cluster["articles"]
    assert [m["id"] for m in members] == articles["ferry"]
    for member, body in zip(members, STORIES["ferry"]):
        assert set(member) >= {"id", "url", "title", "source", "published_at", "duplicate_of"}
        assert member["url"] == body["url"]
        assert member["title"] == body["title"]
        assert member["source"] == body["source"]
        assert member["published_at"] == body["published_at"]
        assert member["duplicate_of"] is None


def test_get_cluster_summary_matches_the_listing(client, stories):
    ids, _ = stories
    single = client.get(f"/v1/clusters/{ids['museum']}").json()
    in_list = next(c for c in listed(client) if c["id"] == ids["museum"])
    assert {k: single[k] for k in SUMMARY_FIELDS} == in_list


def test_get_cluster_lists_a_syndicated_copy_with_duplicate_of(client, stories):
    ids, articles = stories
    original = STORIES["rail"][0]
    copy = client.post(
        "/v1/articles",
        json={**original, "url": "https://commuternews.example/northfield-strike", "source": "commuternews.example"},
    ).json()
    original_id = articles["rail"][0]

    members = client.get(f"/v1/clusters/{ids['rail']}").json()["articles"]

    assert [(m["id"], m["duplicate_of"]) for m in members] == [(original_id, None), (copy["id"], original_id)]


def test_get_unknown_cluster_is_404_json_error(client, stories):
    response = client.get("/v1/clusters/9999")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "9999" in error["message"]


def test_get_cluster_with_non_integer_id_is_422_json_error(client):
    response = client.get("/v1/clusters/latest")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "cluster_id"


def test_get_cluster_with_out_of_range_id_is_a_4xx_json_error(settings):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.get("/v1/clusters/99999999999999999999")
    assert 400 <= response.status_code < 500, response.text
