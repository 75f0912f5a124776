"""Causal language-model workloads."""
