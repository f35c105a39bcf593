"""The ``budcore`` command line (typer + rich).

Ctrl-C and SIGTERM are one line and exit 130/143 from here on (:mod:`budcore.cli.interrupt`): the
console script imports this package before it calls ``main``, and a ``KeyboardInterrupt`` in
between would be a traceback in the generated wrapper, so the script gets start-up handlers first.
"""

import os
import sys

if os.path.basename(sys.argv[0]) in ("budcore", "budcore.exe"):  # the console script, not an import
    from budcore.cli.interrupt import during_start_up

    during_start_up()  # a signal before main() runs: one line, no traceback
try:
    from budcore.cli.app import app, main
except KeyboardInterrupt:  # Ctrl-C while the command line loads: one line, no traceback
    sys.stderr.write("interrupted (SIGINT)\n")
    raise SystemExit(130) from None

__all__ = ["app", "main"]
