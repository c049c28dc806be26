"""Unit tests of the matching engine in continuous trading: one test per rule."""

from __future__ import annotations

import pytest

from exchange.constants import CancelReason, RejectReason
from exchange.engine import Engine
from exchange.events import view
from exchange.symbols import SymbolSpec
from tests_path import *  # noqa: F403  (placeholder, replaced below)
