#!/usr/bin/env bash
# Smoke run of the benchmark commands at tiny sizes, so they keep working (about a
# minute). The figures are meaningless at these sizes: docs/benchmarks.md has the real
# runs. Skips (exit 0) when ../shared/data is absent, since the stream is built from it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/data ]; then
    echo "== bench smoke: ../shared/data absent, skipped"
    exit 0
fi
py=.venv/bin/python
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== bench smoke: stream"
$py -m bench.stream --articles 300 --out "$tmp/stream.jsonl" --seed 2
test "$(wc -l < "$tmp/stream.jsonl")" -eq 300
echo "== bench smoke: signature"
$py -m bench.signature --articles 60 --slow-articles 5 --runs 1 > "$tmp/signature.txt"
grep "bit-for-bit check" "$tmp/signature.txt"
echo "== bench smoke: embed"
$py -m bench.embed --articles 3 --runs 1 | grep "ratio to shipped"
echo "== bench smoke: prepare"
$py -m bench.prepare --articles 30 --runs 1 | grep "text -> prepared article"
echo "== bench smoke: seed, ingest, candidates, restart, reads, memory"
$py -m bench.seed --db "$tmp/stored.db" --stored 1000 --workers 1 > /dev/null
$py -m bench.ingest --from-db "$tmp/stored.db" --articles 60 --batch 30 --runs 1 | grep "throughput:"
$py -m bench.candidates --db "$tmp/stored.db" --articles 40 --batch 20 | grep "the same candidates both ways"
$py -m bench.restart --db "$tmp/stored.db" --runs 1 | grep "ready (/readyz 200)"
$py -m bench.reads --db "$tmp/stored.db" --readers 4 --seconds 1 --runs 1 | grep "GET /v1/clusters "
$py -m bench.reads --db "$tmp/stored.db" --readers 4 --seconds 1 --runs 1 --writer --role reader --write-articles 200 \
    | grep "written while reading"
$py -m bench.memory --db "$tmp/stored.db" --top 3 | grep "bytes an article"
echo "== bench smoke: http (service and baseline)"
$py -m bench.http --articles 60 --batch 30 --runs 1 --workers 1 2 --single 10 --rate 20 | grep "workers=2 / workers=1"
echo "== bench smoke: growth"
$py -m bench.growth --sizes 300 --articles 30 --batch 30 --runs 1 --cache "$tmp/cache" --workers 1 \
    --plot "$tmp/growth.png" | grep "plot:"
test -s "$tmp/growth.png"
echo "== bench smoke: ok"
