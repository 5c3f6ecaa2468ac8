#!/usr/bin/env bash
# Lint, format and architecture checks (the pinned ruff and import-linter of the dev
# extras; configured in pyproject.toml). Any finding fails CI.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/ruff ] || make install-dev

echo "== ruff check"
.venv/bin/ruff check .
echo "== ruff format --check"
.venv/bin/ruff format --check .
echo "== import-linter contracts"
.venv/bin/lint-imports
