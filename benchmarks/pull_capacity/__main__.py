"""``python -m benchmarks.pull_capacity``."""

import sys

from benchmarks.pull_capacity.main import main

sys.exit(main())
