"""C6: ID numbers are personal data; everything shown to people masks them."""

from __future__ import annotations

import pandas as pd


def mask_ids(ids: pd.Series) -> pd.Series:
    """`370921********123X`: region code and last four kept, the birth date hidden."""
    text = ids.astype("str")
    masked = text.str.slice(0, 6) + "********" + text.str.slice(-4)
    return masked.where(text.str.len() >= 10, "*" * 8).where(ids.notna())
