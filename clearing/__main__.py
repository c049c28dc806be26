"""``python -m clearing``: run the clearing process (settings from ``AGORA_CLEARING_*``)."""

from __future__ import annotations

from sqlalchemy.exc import DatabaseError

from clearing.server import ClearingServer
from clearing.settings import ClearingSettings
from exchange.errors import UserError, bind_errors, guard, load_settings
from exchange.logs import configure_logging
from exchange.loop import run
from exchange.usage import parse_args


def main(settings: ClearingSettings | None = None) -> None:
    settings = settings or load_settings(ClearingSettings)
    configure_logging(settings.log_json, settings.log_level)
    with bind_errors("clearing", {"api": (settings.api_bind, "AGORA_CLEARING_API_BIND")}):
        try:
            server = ClearingServer(settings)
        except DatabaseError as exc:  # opening it: not a database, or not ours
            where = settings.db_url.split("?")[0]
            raise UserError(
                f"cannot read the clearing database {where} ({exc.orig or exc}): restore it "
                "from a backup, or move it aside to start with no accounts"
            ) from None
        run(server.serve())


if __name__ == "__main__":
    parse_args("python -m clearing", __doc__, ClearingSettings)
    guard(main, "clearing")
