# syntax=docker/dockerfile:1
# Build: a virtualenv with the service and its pinned dependencies.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY app ./app
COPY clustering ./clustering
COPY migrations ./migrations
RUN /opt/venv/bin/pip install .

# Runtime: the virtualenv on a slim base, an init, a non-root user, a data volume.
FROM python:3.11.14-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin stories \
    && mkdir -p /data && chown stories:stories /data
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    STORIES_DATABASE_URL=sqlite:////data/stories.db \
    STORIES_HOST=0.0.0.0 \
    STORIES_PORT=8000
WORKDIR /srv
USER stories
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('STORIES_PORT', '8000'), timeout=4)"]
# tini is PID 1 and forwards SIGTERM to uvicorn, which finishes in-flight requests.
# `serve` migrates before it listens; run `stories migrate` once first when several
# replicas share one database.
ENTRYPOINT ["tini", "--", "stories"]
CMD ["serve"]
