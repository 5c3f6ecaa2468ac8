"""The reader's kept renderings: served only at the change-feed position they were rendered at."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi import HTTPException
from pydantic import BaseModel

from app.api.pages import RenderedPages


class Page(BaseModel):
    title: str


def test_a_kept_response_is_served_only_at_its_position():
    pages = RenderedPages()
    pages.put("first", 7, b"seven")
    assert pages.get("first", 7) == b"seven"
    assert pages.get("first", 8) is None
    assert pages.get("second", 7) is None


def test_a_response_rendered_at_a_later_position_is_not_replaced_by_an_earlier_one():
    pages = RenderedPages()
    pages.put("first", 9, b"nine")
    pages.put("first", 8, b"eight")  # a request that read the position before the write at 9
    assert pages.get("first", 9) == b"nine"
    pages.put("first", 10, b"ten")
    assert pages.get("first", 10) == b"ten"


def test_the_least_recently_used_responses_go_first_beyond_the_byte_budget():
    pages = RenderedPages(budget=10, largest=4)
    pages.put("a", 1, b"aaaa")
    pages.put("b", 1, b"bbbb")
    assert pages.get("a", 1) == b"aaaa"  # now "b" is the least recently used
    pages.put("c", 1, b"cccc")
    assert pages.size == 8 and len(pages) == 2
    assert pages.get("b", 1) is None
    assert pages.get("a", 1) == b"aaaa" and pages.get("c", 1) == b"cccc"


def test_a_response_larger_than_the_largest_kept_is_not_kept():
    pages = RenderedPages(budget=10, largest=4)
    pages.put("story", 1, b"12345")
    assert pages.get("story", 1) is None and pages.size == 0


def test_respond_renders_once_per_position():
    pages, rendered = RenderedPages(), []

    def render() -> Page:
        rendered.append(1)
        return Page(title=f"rendering {len(rendered)}")

    assert pages.respond("page", 3, render).body == b'{"title":"rendering 1"}'
    assert pages.respond("page", 3, render).body == b'{"title":"rendering 1"}'
    assert pages.respond("page", 4, render).body == b'{"title":"rendering 2"}'
    assert len(rendered) == 2
    assert (pages.rendered_, pages.kept_) == (2, 1)


def test_requests_that_miss_together_share_one_rendering():
    pages, rendered = RenderedPages(), []

    def slow() -> Page:
        rendered.append(1)
        time.sleep(0.2)
        return Page(title="first page")

    bodies = []
    threads = [threading.Thread(target=lambda: bodies.append(pages.respond("page", 5, slow).body)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert bodies == [b'{"title":"first page"}'] * 8
    assert len(rendered) == 1
    assert (pages.rendered_, pages.kept_) == (1, 7)


def test_a_rendering_that_fails_is_raised_and_not_kept():
    pages = RenderedPages()

    def missing() -> Page:
        raise HTTPException(404, "no such story")

    with pytest.raises(HTTPException):
        pages.respond("story", 1, missing)
    assert len(pages) == 0
    assert pages.rendered_ == 0


@pytest.mark.parametrize("budget, largest", [(10, 0), (4, 10)])
def test_budgets_that_cannot_hold_a_response_are_refused_with_a_message(budget, largest):
    with pytest.raises(ValueError, match="budget at least largest"):
        RenderedPages(budget=budget, largest=largest)
