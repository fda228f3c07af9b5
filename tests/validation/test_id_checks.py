"""The vectorized ID check character (RULES.md C1) behind the ledger's `id_valid`."""

from __future__ import annotations

import pandas as pd

from pipelines.validation import id_check_valid
from tests.validation.frames import id_number


def test_check_character_accepts_numbers_computed_by_the_rule() -> None:
    ids = pd.Series([id_number("37092119750101123"), "11010519491231002X"], dtype="str")
    assert id_check_valid(ids).tolist() == [True, True]


def test_check_character_rejects_a_wrong_last_character() -> None:
    assert id_check_valid(pd.Series(["110105194912310021"], dtype="str")).tolist() == [False]


def test_check_character_rejects_lowercase_x_fifteen_digits_letters_and_null() -> None:
    ids = pd.Series(
        ["11010519491231002x", "370921750101123", "37092119750101123A", None], dtype="str"
    )
    assert id_check_valid(ids).tolist() == [False, False, False, False]


def test_check_character_handles_a_filtered_frame_index() -> None:
    ids = pd.Series(["x", "11010519491231002X", "11010519491231002X"], index=[5, 9, 7], dtype="str")
    assert id_check_valid(ids.iloc[1:]).tolist() == [True, True]


def test_check_character_reads_a_series_stored_in_several_chunks() -> None:
    parts = [pd.Series(["11010519491231002X"], dtype="str")] * 2
    assert id_check_valid(pd.concat(parts, ignore_index=True)).tolist() == [True, True]
