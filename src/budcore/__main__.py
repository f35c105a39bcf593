"""``python -m budcore``: the same as the ``budcore`` console script."""

import sys

from budcore.cli.app import main

sys.exit(main())
