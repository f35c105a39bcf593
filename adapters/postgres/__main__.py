"""Schema commands without the budcore CLI: ``python -m budcore_adapters.postgres <command>``.

::

    python -m budcore_adapters.postgres upgrade   [--url URL] [--revision head]
    python -m budcore_adapters.postgres downgrade --revision REV [--url URL]
    python -m budcore_adapters.postgres current   [--url URL]
    python -m budcore_adapters.postgres check     [--url URL]

``--url`` defaults to ``$BUDCORE_DATABASE_URL``. Exit status 0 on success, 1 with the error's
message on stderr for any budcore error (unreachable database, wrong revision, bad URL).
"""

from __future__ import annotations

import argparse
import sys

from budcore.domain.errors import BudcoreError

from .migrate import check_schema, current_revision, downgrade, upgrade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m budcore_adapters.postgres", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["upgrade", "downgrade", "current", "check"])
    parser.add_argument("--url", default=None, help="database URL (default: $BUDCORE_DATABASE_URL)")
    parser.add_argument(
        "--revision", default=None, help="target revision (upgrade: head; downgrade: required)"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "upgrade":
            upgrade(args.url, args.revision or "head")
            print(f"at revision {current_revision(args.url)}")
        elif args.command == "downgrade":
            if args.revision is None:
                parser.error("downgrade needs --revision (use 'base' to remove every budcore table)")
            downgrade(args.url, args.revision)
            print(f"at revision {current_revision(args.url) or 'base'}")
        elif args.command == "current":
            print(current_revision(args.url) or "base")
        else:
            print(f"ok: at head {check_schema(args.url)}")
    except BudcoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
