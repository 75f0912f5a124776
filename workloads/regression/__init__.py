"""Tabular regression workloads."""
