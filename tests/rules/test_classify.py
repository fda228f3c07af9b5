"""R4/R5: subjects from labels, field names as professional, training mode."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.rules.classify import classify_subject
from pipelines.rules.config import RulesConfig
from tests.rules.factory import ledger, record


@pytest.mark.parametrize(
    ("label", "subject"),
    [
        ("公需科目", "public"),
        ("公需课", "public"),
        ("公需", "public"),
        ("PUBLIC", "public"),
        ("专业科目", "professional"),
        ("专业课", "professional"),
        ("专业", "professional"),
        ("PROFESSIONAL", "professional"),
        ("乡村振兴", "professional"),
        ("RURAL", "professional"),
    ],
)
def test_r4_maps_every_known_label(label: str, subject: str) -> None:
    platform = pd.Series(["ta_yx"], dtype="str")
    assert classify_subject(platform, pd.Series([label], dtype="str")).tolist() == [subject]


def test_r4_yt_samet_field_names_are_professional() -> None:
    subjects = classify_subject(
        pd.Series(["yt_samet", "yt_samet", "yt_naas"], dtype="str"),
        pd.Series(["工程技术", "", "工程技术"], dtype="str"),
    )
    assert subjects.isna().tolist() == [False, True, True]
    assert subjects.iloc[0] == "professional"


def test_r4_a_label_added_to_the_config_is_used() -> None:
    config = RulesConfig(labels={"继续教育": "public"})
    platform = pd.Series(["ta_yx"], dtype="str")
    assert classify_subject(platform, pd.Series(["继续教育"]), config).tolist() == ["public"]


def test_r4_unknown_label_is_quarantined_as_unknown_category() -> None:
    row = ledger(record(category_label="选修课")).iloc[0]
    assert (row["state"], row["reason"]) == ("quarantined", "unknown_category")
    assert pd.isna(row["subject"])


def test_r5_every_platform_record_is_training() -> None:
    assert (
        ledger(record(), record(source_key="r2", passed=False))["mode"].tolist() == ["training"] * 2
    )
