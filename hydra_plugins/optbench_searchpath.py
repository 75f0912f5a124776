"""Adds the folders of $OPTBENCH_USER_CONFIG (harness/user_config.py) to Hydra's config search
path, after this repository's conf/, so a user's own submission or workload YAML is a choice like
ours in every process that composes the config. Hydra finds search-path plugins only in the
`hydra_plugins` package, hence this file. Never imports torch; never reorders other entries.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

from harness import user_config

PROVIDER = "optbench-user-config"  # how the entry is named in hydra.runtime.config_sources


class UserConfigSearchPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for folder in user_config.folders():
            search_path.append(PROVIDER, f"file://{folder}")
