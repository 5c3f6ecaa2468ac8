"""Story members' term vectors are read back from the database, not held in memory."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import update

from app.api.schemas import ArticleIn
from app.service.ingest import StoryService
from app.store import migrate
from app.store.db import make_engine, make_sessionmaker
from app.store.models import Article
from clustering.assign import member_centrality
from clustering.vectorise import PackedFeatures, features
from tests.synthetic_news import OUTLETS, make_stories, report


@pytest.fixture
def service(settings) -> Iterator[StoryService]:
    engine = make_engine(settings)
    migrate.upgrade(engine)
    made = StoryService(make_sessionmaker(engine))
    made.load()
    yield made
    made.close()
    engine.dispose()


def _ingest(service: StoryService, stories, outlets) -> list:
    return service.ingest(
        [
            ArticleIn(**report(story, outlet, rewrite=k % 2 == 1))
            for story in stories
            for k, outlet in enumerate(outlets)
        ]
    )


def test_only_the_vectors_of_the_running_transaction_are_held(service):
    stories = make_stories(3, seed=5)
    first = _ingest(service, stories[:2], OUTLETS[:3])
    assert len(service.caches.vectors) == len(first)  # until the next transaction starts
    second = _ingest(service, stories[2:], OUTLETS[:2])
    assert len(service.caches.vectors) == len(second)
    assert len(service.index.article_story_) == len(first) + len(second)


def test_centrality_read_back_is_that_of_the_stored_articles(service):
    _ingest(service, make_stories(3, seed=7), OUTLETS[:4])
    index = service.index
    with service.sessions.begin() as session:
        service.caches.vectors.begin(session)
        for story_id, story in index.stories_.items():
            rows = session.query(Article.id, Article.title, Article.text).filter(Article.id.in_(story.members)).all()
            expected = member_centrality({a: features(t, x) for a, t, x in rows}, index.df_, story.sums)
            got = index.centrality(story_id)
            assert list(got) == list(story.members)  # members in the index's order
            assert got == pytest.approx(expected)


def test_an_article_stored_without_vectors_is_read_from_its_text(service):
    (story,) = make_stories(1, seed=9)
    stored = _ingest(service, [story], OUTLETS[:3])
    first = stored[0].id
    with service.sessions.begin() as session:
        session.execute(update(Article).where(Article.id == first).values(features=None))
    assert service.take_down(stored[2].id) == stored[0].cluster_id  # its story's summary reads the others
    with service.sessions.begin() as session:
        service.caches.vectors.begin(session)
        (got,) = service.caches.vectors.get([first]).values()
        article = session.get(Article, first)
        want = features(article.title, article.text).pack()
    assert isinstance(got, PackedFeatures) and got.ends == want.ends
    assert np.array_equal(got.indices, want.indices) and np.array_equal(got.data, want.data)


def test_vectors_are_read_only_inside_a_transaction(service):
    stories = make_stories(2, seed=11)
    stored = _ingest(service, stories[:1], OUTLETS[:2])
    _ingest(service, stories[1:], OUTLETS[:1])  # the first ones are no longer held
    with pytest.raises(RuntimeError, match="inside the transaction"):
        service.caches.vectors.get([stored[0].id])
