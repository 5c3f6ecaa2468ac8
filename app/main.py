"""The ASGI application, ``app.main:app``, built from the environment (``STORIES_*``):
what ``uvicorn app.main:app`` and ``stories serve`` run."""

from app.api.factory import create_app

app = create_app()
