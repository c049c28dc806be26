"""``python -m agents``: run, list and attach trading agents (see `agents.cli`)."""

from agents.cli import app

if __name__ == "__main__":
    app()
