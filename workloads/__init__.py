"""Workload families. Each workload is one class named by `_target_` in conf/workload/*.yaml."""
