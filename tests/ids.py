"""The tests' own ID numbers, their check character computed digit by digit as RULES.md C1
says (independently of `schemas.id_numbers`, which the tests check)."""

from __future__ import annotations

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def with_check(first17: str) -> str:
    """An 18-character ID: the 17 given digits plus their MOD 11-2 check character."""
    return first17 + CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS, strict=True)) % 11]
