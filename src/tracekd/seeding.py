"""Seeded randomness that does not depend on row order or on Python's salted hashes."""

from __future__ import annotations

import hashlib
import random


def row_rng(seed: int, setting: str, row_id: str) -> random.Random:
    """An RNG for one row, independent of row order (a stable hash, not Python's salted one)."""
    digest = hashlib.sha256(f"{seed}\x00{setting}\x00{row_id}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))
