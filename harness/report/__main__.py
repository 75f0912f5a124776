"""`python -m harness.report RESULTS_DIR`: see harness/report/cli.py."""

import sys

from harness.report.cli import main

sys.exit(main())
