"""``python -m spotreg``: the same as the ``spotreg`` console script."""

import sys

from spotreg.cli import main

sys.exit(main())
