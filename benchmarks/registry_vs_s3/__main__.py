"""``python -m benchmarks.registry_vs_s3``: see the package's docstring."""

import sys

from benchmarks.registry_vs_s3.main import main

sys.exit(main())
