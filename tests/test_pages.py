"""The reader's kept renderings: served only at the change-feed position they were rendered at."""

from __future__ import annotations

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


def test_the_least_recently_used_response_goes_first_beyond_capacity():
    pages = RenderedPages(capacity=2)
    pages.put("a", 1, b"a")
    pages.put("b", 1, b"b")
    assert pages.get("a", 1) == b"a"  # now "b" is the least recently used
    pages.put("c", 1, b"c")
    assert len(pages) == 2
    assert pages.get("b", 1) is None
    assert pages.get("a", 1) == b"a" and pages.get("c", 1) == b"c"


def test_respond_renders_once_per_position():
    pages, rendered = RenderedPages(), []

    def render() -> Page:
        rendered.append(1)
        return Page(title=f"rendering {len(rendered)}")

    assert pages.respond("page", 3, render).body == b'{"title":"rendering 1"}'
    assert pages.respond("page", 3, render).body == b'{"title":"rendering 1"}'
    assert pages.respond("page", 4, render).body == b'{"title":"rendering 2"}'
    assert len(rendered) == 2


def test_a_rendering_that_fails_is_raised_and_not_kept():
    pages = RenderedPages()

    def missing() -> Page:
        raise HTTPException(404, "no such story")

    with pytest.raises(HTTPException):
        pages.respond("story", 1, missing)
    assert len(pages) == 0


def test_capacity_below_one_is_refused_with_a_message():
    with pytest.raises(ValueError, match="at least 1"):
        RenderedPages(capacity=0)
