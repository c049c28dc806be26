"""Suite-wide settings.

The cores run as Python here, whatever a developer has built into the compiled-cores cache
(`accel`): a local build neither changes what is tested nor hides the code from coverage and
debuggers. ``AGORA_TEST_COMPILED=1`` runs the tests on the compiled cores instead, as the
second pass of ``scripts/test.sh`` does for the tests of those modules.

Property tests have no wall-clock limits (hypothesis's per-example deadline and its "too slow"
health check): how long an example takes says how busy the machine is, not whether the code
is right.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("agora", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("agora")

COMPILED = os.environ.get("AGORA_TEST_COMPILED", "") not in ("", "0")
if not COMPILED:
    os.environ["AGORA_PURE"] = "1"  # before any test module imports a core


def pytest_report_header(config: pytest.Config) -> str:
    return "cores: " + ("compiled where built (AGORA_TEST_COMPILED=1)" if COMPILED else "Python")
