"""``python -m agents``: run, list and attach trading agents (see `agents.cli`)."""

from agents.cli import app
from exchange.errors import guard

if __name__ == "__main__":
    guard(app, "agents")
