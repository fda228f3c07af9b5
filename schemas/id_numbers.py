"""RULES.md C1's check character: ISO 7064 MOD 11-2 over the first 17 digits of an ID number."""

from __future__ import annotations

import numpy as np

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
ID_CHECK_CHARS = np.frombuffer(b"10X98765432", dtype=np.uint8)
"""The check character (as a byte) for each remainder 0–10."""


def check_chars(digits17: np.ndarray) -> np.ndarray:
    """The check character (as a byte) of each row of 17 ASCII digit bytes."""
    remainder = ((digits17.astype(np.int64) - ord("0")) @ ID_WEIGHTS) % 11
    return ID_CHECK_CHARS[remainder]
