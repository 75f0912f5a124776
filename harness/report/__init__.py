"""The analysis side: from a results folder to leaderboards, tables and figures.

Reads run folders and never writes into them; never imports torch, so a report runs on a machine
without it. `python -m harness.report RESULTS_DIR` is the command line (harness/report/cli.py).
"""
