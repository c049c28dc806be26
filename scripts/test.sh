#!/usr/bin/env bash
# The test command (README): set up a local virtualenv with the test extra, lint, run the suite.
# With no arguments, a second pass then builds the compiled cores (accel) into a scratch cache
# and runs the tests of those modules on them (the first pass runs them as Python).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
if [ "$#" -eq 0 ]; then
  accel_dir="$(mktemp -d)"
  trap 'rm -rf "$accel_dir"' EXIT
  echo "== compiled cores: build, then their tests on them"
  AGORA_ACCEL_DIR="$accel_dir" .venv/bin/agora accel build
  AGORA_ACCEL_DIR="$accel_dir" AGORA_TEST_COMPILED=1 .venv/bin/python -m pytest -q \
    tests/test_accel.py tests/test_sim.py tests/test_sim_clearing.py tests/test_sim_cli.py \
    tests/test_live_and_sim.py tests/test_ledger.py tests/test_risk.py tests/test_reports.py \
    tests/test_portfolio.py tests/test_strategies.py tests/test_fair_value_market.py \
    tests/test_clearing_properties.py tests/test_stylized.py tests/test_engine_speed_equiv.py
fi
