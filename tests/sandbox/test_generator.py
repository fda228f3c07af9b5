"""The generator as a whole: its frames' shape, determinism, valid IDs, conservation (D4), what
each platform serves, and that every rule's scenario is present even in a small dataset."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from sandbox.generator import Dataset, Truth, generate
from schemas.ledger import COMPLETION_DTYPES, HOURS_BANK_DTYPES, RECONCILIATION_DTYPES, STATES
from schemas.raw import RAW_DTYPES
from tests.ids import with_check

PROVINCES = {
    *range(11, 16), *range(21, 24), *range(31, 38), *range(41, 47), *range(50, 55),
    *range(61, 66), 71, 81, 82,
}  # fmt: skip
EXTRA_COLUMNS = [
    "record_key",
    "epoch",
    "wire_hours",
    "wire_id_numeric",
    "hidden_until_paged",
    "wire_field",
]


def id_is_valid(number: str) -> bool:
    """An 18-character ID with a real birth date, a known province and a correct MOD 11-2
    check character, checked plainly."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return int(number[:2]) in PROVINCES and with_check(number[:17]) == number


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(2_000, seed=3)


@pytest.fixture(scope="module")
def truth(dataset: Dataset) -> Truth:
    return dataset.truth()


def test_records_have_the_raw_columns_and_the_wire_extras(dataset: Dataset) -> None:
    raw = [c for c in RAW_DTYPES if c not in ("payload", "pulled_at")]
    assert list(dataset.records.columns) == raw + EXTRA_COLUMNS
    for column in raw:
        assert str(dataset.records[column].dtype) == str(pd.Series(dtype=RAW_DTYPES[column]).dtype)


def test_records_number_what_was_asked(dataset: Dataset) -> None:
    assert len(dataset.records) == 2_000


def test_record_key_is_platform_and_source_key(dataset: Dataset) -> None:
    records = dataset.records
    assert (records["record_key"] == records["platform"] + ":" + records["source_key"]).all()


def test_people_have_the_documented_columns(dataset: Dataset) -> None:
    people = dataset.people
    assert list(people.columns) == [
        "id_number", "name", "birth_date", "gender", "city", "employer", "employer_type",
    ]  # fmt: skip
    assert set(people["gender"]) == {"男", "女"}
    assert set(people["city"]) == {"taian", "yantai"}
    enterprise = people["employer"].str.endswith("公司")
    assert (people["employer_type"] == np.where(enterprise, "enterprise", "institution")).all()
    assert people["employer"].str.contains("（", regex=False).any()


def test_truth_frames_have_the_ledger_schemas(truth: Truth) -> None:
    completion = [c for c in COMPLETION_DTYPES if c not in ("first_seen_at", "last_seen_at")]
    assert list(truth.completion.columns) == completion
    assert list(truth.hours_bank.columns) == list(HOURS_BANK_DTYPES)
    assert list(truth.reconciliation.columns) == [c for c in RECONCILIATION_DTYPES if c != "run_id"]
    assert list(truth.name_conflicts.columns) == ["id_number", "names"]
    assert truth.completion["record_key"].is_monotonic_increasing


def test_same_seed_gives_identical_frames(dataset: Dataset) -> None:
    again = generate(2_000, seed=3)
    pd.testing.assert_frame_equal(again.records, dataset.records)
    pd.testing.assert_frame_equal(again.people, dataset.people)
    pd.testing.assert_frame_equal(again.truth().completion, dataset.truth().completion)


def test_different_seed_gives_different_records(dataset: Dataset) -> None:
    other = generate(2_000, seed=4)
    assert not other.records["record_key"].equals(dataset.records["record_key"])
    assert not other.people["id_number"].equals(dataset.people["id_number"])


def test_every_person_has_a_valid_id(dataset: Dataset) -> None:
    ids = dataset.people["id_number"]
    assert all(id_is_valid(number) for number in ids)
    assert ids.is_unique
    assert (ids.str[16].astype(int) % 2 == np.where(dataset.people["gender"] == "男", 1, 0)).all()
    assert (
        ids.str[6:14] == pd.to_datetime(dataset.people["birth_date"]).dt.strftime("%Y%m%d")
    ).all()


def test_every_invalid_id_fails_the_check(dataset: Dataset, truth: Truth) -> None:
    quarantined = truth.completion[truth.completion["reason"] == "invalid_id_number"]
    raw = dataset.records.set_index("record_key").loc[quarantined["record_key"], "raw_id"]
    assert len(raw) > 0
    assert not any(id_is_valid(number) for number in raw)


def test_ids_come_from_taian_and_yantai(dataset: Dataset) -> None:
    regions = dataset.people["id_number"].str[:4]
    assert set(regions) == {"3709", "3706"}


def test_d4_each_record_has_exactly_one_state(truth: Truth) -> None:
    states = truth.completion["state"]
    assert states.notna().all() and states.isin(STATES).all()
    assert truth.completion["record_key"].is_unique


def test_d4_raw_is_the_sum_of_the_four_states_per_platform_and_year(truth: Truth) -> None:
    counts = truth.reconciliation
    parts = counts["credited"] + counts["merged"] + counts["not_credited"] + counts["quarantined"]
    assert (counts["raw"] == parts).all()
    assert counts["raw"].sum() == len(truth.completion)


def test_d4_credited_hours_add_up_per_record(truth: Truth) -> None:
    ledger = truth.completion
    credited = ledger[ledger["state"] == "credited"]
    total = credited["hours_credited"] + credited["hours_trimmed"]
    assert np.allclose(total, credited["hours_reported"])
    others = ledger[ledger["state"] != "credited"]
    assert (others["hours_credited"] == 0).all() and (others["hours_trimmed"] == 0).all()


def test_no_person_is_credited_more_than_eight_hours_a_day(truth: Truth) -> None:
    credited = truth.completion[truth.completion["state"] == "credited"]
    days = credited.groupby(["id_number", credited["completed_at"].dt.date])["hours_credited"]
    assert days.sum().max() <= 8 + 1e-9


def test_every_interaction_stays_in_one_pull_year(dataset: Dataset) -> None:
    outcomes = dataset.outcomes.drop_duplicates("record_key", keep="last").set_index("record_key")
    merged = outcomes[outcomes["state"] == "merged"]
    targets = outcomes.loc[merged["merged_into"], "pull_year"]
    assert (targets.to_numpy() == merged["pull_year"].to_numpy()).all()
    credited = outcomes[outcomes["state"] == "credited"]
    days = credited.groupby(["id_number", credited["completed_at"].dt.date])["pull_year"]
    assert (days.min() == days.max()).all()


def test_truth_for_some_years_is_the_matching_part_of_the_whole(dataset: Dataset) -> None:
    whole = dataset.truth(epoch=1).completion
    parts = pd.concat([dataset.truth(epoch=1, years=[y]).completion for y in range(2016, 2023)])
    assert sorted(parts["record_key"]) == sorted(whole["record_key"])
    some = dataset.truth(epoch=1, years=[2022]).hours_bank
    assert (some["year"] <= 2022).all() and len(some) > 0


def test_served_keeps_the_latest_version_of_each_record(dataset: Dataset) -> None:
    served = dataset.served("ta_yx", epoch=1)
    assert served["record_key"].is_unique
    corrected = dataset.records[
        (dataset.records["epoch"] == 1) & (dataset.records["platform"] == "ta_yx")
    ]
    latest = served.set_index("record_key").loc[corrected["record_key"]]
    assert latest["passed"].all()


def test_served_treewises_keeps_revocations_and_huaxue_drops_vanished_rows(
    dataset: Dataset,
) -> None:
    assert not dataset.served("ta_sdty", epoch=0)["withdrawn"].any()
    assert dataset.served("ta_sdty", epoch=1)["withdrawn"].sum() == 1
    before = dataset.served("yt_ytec", epoch=0)
    after = dataset.served("yt_ytec", epoch=1)
    assert not after["withdrawn"].any()
    assert len(before) == len(after) + 1


def test_vanished_snapshot_row_knows_only_its_key(dataset: Dataset) -> None:
    gone = dataset.records[
        dataset.records["withdrawn"] & (dataset.records["platform"] == "yt_ytec")
    ]
    assert gone[["raw_id", "name", "course_title", "hours", "completed_at"]].isna().all().all()
    assert gone[["source_key", "pull_year"]].notna().all().all()


def test_wire_hours_follow_each_family(dataset: Dataset) -> None:
    records = dataset.records.dropna(subset=["hours"])
    tyjrp = records[(records["platform"] == "ta_tyjrp") & (records["hours"] > 0)]
    minutes = tyjrp["wire_hours"].astype(int)
    assert (np.floor(minutes * 10 / 45 + 0.5) / 10 == tyjrp["hours"]).all()
    huaxue = records[records["platform"] == "yt_ytec"]
    assert huaxue["wire_hours"].str.endswith("学时").all()
    assert (huaxue["wire_hours"].str.removesuffix("学时").astype(float) == huaxue["hours"]).all()
    yx = records[records["platform"] == "ta_yx"]
    assert (yx["wire_hours"].astype(float) == yx["hours"]).all()


def test_spa_hides_the_two_newest_records_of_each_platform_year(dataset: Dataset) -> None:
    records = dataset.records
    assert set(records.loc[records["hidden_until_paged"], "platform"]) == {"yt_naas", "yt_samet"}
    spa = records[records["platform"].isin(["yt_naas", "yt_samet"])]
    ids = spa["source_key"].astype(int)
    newest = ids.groupby([spa["platform"], spa["pull_year"]]).rank(ascending=False) <= 2
    assert (newest == spa["hidden_until_paged"]).all()


def test_every_rule_appears_at_three_hundred_records() -> None:
    small = generate(300, seed=9).truth()
    reasons = set(small.completion["reason"].dropna())
    assert reasons == {
        "R6", "R7", "D2", "D3", "invalid_id_number", "id_number_corrupted", "unknown_category",
        "invalid_makeup", "out_of_range_date", "invalid_hours",
    }  # fmt: skip
    assert (~small.hours_bank["binding"]).any() and small.hours_bank["compliant"].any()
    assert len(small.name_conflicts) == 1


def test_larger_datasets_hold_proportionally_more_scenarios() -> None:
    larger = generate(6_000, seed=9).truth()
    assert (larger.completion["reason"] == "id_number_corrupted").sum() == 3


def test_years_outside_the_supported_range_are_refused() -> None:
    with pytest.raises(ValueError, match="years"):
        generate(300, years=(2016, 2022))
