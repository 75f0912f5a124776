"""`python -m harness.report RESULTS_DIR`: see harness/report/cli.py."""

import sys

from harness.report.cli import main

if __name__ == "__main__":
    try:
        sys.exit(main(parallel=True))
    except KeyboardInterrupt:
        # The report never writes into run folders; its cache and outputs are written
        # atomically.
        print(
            "interrupted; the results folder is unchanged and the report folder may be "
            "incomplete: run the same command again",
            file=sys.stderr,
        )
        sys.exit(130)
