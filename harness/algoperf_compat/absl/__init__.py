"""The stand-in for `absl`, served only when absl-py is not installed: just `absl.logging`,
which AlgoPerf submission files use for their log lines (harness/algoperf_compat/__init__.py)."""
