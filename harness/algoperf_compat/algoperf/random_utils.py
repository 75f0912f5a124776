"""`algoperf.random_utils` for PyTorch submission files: numpy stand-ins for jax's PRNG API.

A key is a numpy uint32 array of 2 values below 2**31 - 1, the kind AlgoPerf's PyTorch runner
hands a submission as `rng`. `split` and `fold_in` derive new keys deterministically (numpy's
SeedSequence), so a file that splits its `rng` gets the same streams on every run of a seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

KEY_LIMIT = 2**31 - 1  # keys stay below it, so np.random.RandomState accepts any of them


def _entropy(seed: Any) -> list[int]:
    values = np.asarray(seed, dtype=np.int64).reshape(-1)
    return [int(v) % KEY_LIMIT for v in values]


def PRNGKey(seed: Any) -> np.ndarray:
    """A key from an integer seed (or from a key)."""
    return split(seed, 2)[0]


def split(seed: Any, num: int = 2) -> np.ndarray:
    """`num` new keys from `seed`: an array of shape (num, 2)."""
    state = np.random.SeedSequence(_entropy(seed)).generate_state(2 * num, dtype=np.uint32)
    return (state % KEY_LIMIT).astype(np.uint32).reshape(num, 2)


def fold_in(seed: Any, data: int) -> np.ndarray:
    """A new key from `seed` and an integer (e.g. the step)."""
    return split([*_entropy(seed), int(data) % KEY_LIMIT], 1)[0]
