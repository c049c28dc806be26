#!/usr/bin/env bash
# The test command (README): set up a local virtualenv with the test extra and every optional
# extra a feature needs (rl, replay, web), lint, run the suite. With no arguments, a second pass
# then builds the compiled cores (accel) into a scratch cache and runs the tests of those
# modules on them (the first pass runs them as Python).
#
# The extras' tests run here too, so they cannot rot: torch's CPU build is installed first
# (the rl extra's stable-baselines3 would otherwise pull a multi-GB GPU build), and the
# browser tests need Chromium: installed with apt-get when missing and we are root; otherwise
# those tests skip with a message naming the install command. AGORA_TEST_EXTRAS=0 skips the
# heavy extras (torch, stable-baselines3) for a quick local run.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
extras="test,web,replay"
if [ "${AGORA_TEST_EXTRAS:-1}" != "0" ]; then
  "${pip[@]}" "torch==2.13.0"
  extras="test,web,replay,rl"
fi
"${pip[@]}" -e ".[$extras]"
# Debian packages some tests need: chromium (browser tests), prometheus (its promtool checks
# the monitoring configuration). Installed when missing and we are root; otherwise those tests
# skip with a message naming the install command.
apt_pkgs=()
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
command -v promtool >/dev/null 2>&1 || apt_pkgs+=(prometheus)
if [ "${#apt_pkgs[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing Debian's ${apt_pkgs[*]} for the browser and monitoring tests"
  apt-get install -y -q --no-install-recommends "${apt_pkgs[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null \
         && apt-get install -y -q --no-install-recommends "${apt_pkgs[@]}" >/dev/null; } \
    || echo "== ${apt_pkgs[*]} could not be installed: the tests that need them skip and say so"
fi
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
