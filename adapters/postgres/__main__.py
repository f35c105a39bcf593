"""Schema commands without the budcore CLI: ``python -m budcore_adapters.postgres <command>``.

::

    python -m budcore_adapters.postgres upgrade   [--url URL] [--revision head]
    python -m budcore_adapters.postgres downgrade --revision REV [--url URL] [--yes]
    python -m budcore_adapters.postgres current   [--url URL]
    python -m budcore_adapters.postgres check     [--url URL]

``--url`` defaults to ``$BUDCORE_DATABASE_URL`` (quote it: ``&`` and ``?`` mean something to the
shell); ``--connect-timeout SECONDS`` (default 10) bounds the wait for the server to answer;
``downgrade --revision base`` drops every budcore table and needs ``--yes``. Exit status 0 on
success, 1 with the error's message on stderr for any budcore error (unreachable database, wrong
revision, bad URL).
"""

from __future__ import annotations

import argparse
import sys

from budcore.domain.errors import BudcoreError

from .engine import DEFAULT_CONNECT_TIMEOUT, check_connect_timeout
from .migrate import check_schema, confirm_downgrade, current_revision, downgrade, upgrade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m budcore_adapters.postgres", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["upgrade", "downgrade", "current", "check"])
    parser.add_argument("--url", default=None, help="database URL (default: $BUDCORE_DATABASE_URL)")
    parser.add_argument(
        "--revision", default=None, help="target revision (upgrade: head; downgrade: required)"
    )
    parser.add_argument("--yes", action="store_true", help="confirm a downgrade to 'base'")
    parser.add_argument(
        "--connect-timeout",
        type=int,
        default=DEFAULT_CONNECT_TIMEOUT,
        help=f"seconds to wait for the server to answer (default {DEFAULT_CONNECT_TIMEOUT}, at least 2)",
    )
    args = parser.parse_args(argv)
    try:
        timeout = check_connect_timeout(args.connect_timeout, "--connect-timeout")
        if args.command == "upgrade":
            upgrade(args.url, args.revision or "head", connect_timeout=timeout)
            print(f"at revision {current_revision(args.url, connect_timeout=timeout)}")
        elif args.command == "downgrade":
            if args.revision is None:
                parser.error("downgrade needs --revision (use 'base' to remove every budcore table)")
            confirm_downgrade(args.revision, args.yes)
            downgrade(args.url, args.revision, connect_timeout=timeout)
            print(f"at revision {current_revision(args.url, connect_timeout=timeout) or 'base'}")
        elif args.command == "current":
            print(current_revision(args.url, connect_timeout=timeout) or "base")
        else:
            print(f"ok: at head {check_schema(args.url, connect_timeout=timeout)}")
    except BudcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
