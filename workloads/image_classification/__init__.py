"""Image classification workloads."""
