#!/bin/sh
# Every benchmark, one report: bench/run.sh [--quick]   (see bench/RESULTS.md)
set -e
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m bench.run "$@"
