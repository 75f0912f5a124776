"""The stand-in for `algoperf` (and `algorithmic_efficiency`), served only when AlgoPerf is not
installed (harness/algoperf_compat/__init__.py). Its submodules: spec, pytorch_utils,
param_utils, random_utils."""

__version__ = "0.0.0+optbench-stand-in"
