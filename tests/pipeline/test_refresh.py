"""Refreshing the outputs: a full run first, then only the people whose records changed."""

from __future__ import annotations

import pandas as pd

from pipelines.refresh import refresh_outputs, rules_fingerprint
from pipelines.rules.bank import reconciliation_counts
from pipelines.rules.config import RulesConfig
from pipelines.store import Store
from tests.load.frames import at, bare_withdrawal, id_number, raw_frame, raw_row

ALICE = id_number("37092119800101001")
BOB = id_number("37068219900215002")
CAROL = id_number("37060219751231003")
OUTPUTS = ("completion", "hours_bank", "name_conflict")


def stored(store: Store, *rows: dict[str, object]) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(*rows), {"page": 1})


def outputs(store: Store) -> dict[str, pd.DataFrame]:
    return {name: store.read_table(name) for name in OUTPUTS}


def history(store: Store) -> None:
    stored(
        store,
        raw_row("1", raw_id=ALICE),
        raw_row("2", raw_id=ALICE, completed_at=at("2022-05-04 10:00")),
        raw_row("3", raw_id=BOB, name="李四"),
        raw_row("4", raw_id="not-an-id"),
    )


def assert_same_as_a_full_run(store: Store) -> None:
    incremental = outputs(store)
    refresh_outputs(store, full=True)
    for name, frame in outputs(store).items():
        pd.testing.assert_frame_equal(incremental[name], frame, obj=name)


def test_the_first_refresh_is_full(store: Store) -> None:
    history(store)

    refresh = refresh_outputs(store)

    assert refresh.mode == "full"
    assert len(store.read_table("completion")) == 4


def test_a_refresh_with_nothing_stored_since_recomputes_nobody(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    refresh = refresh_outputs(store)

    assert (refresh.mode, refresh.records_changed, refresh.people) == ("incremental", 0, 0)


def test_a_changed_record_recomputes_only_its_person(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    stored(store, raw_row("3", raw_id=BOB, name="李四", hours=3.0))
    refresh = refresh_outputs(store)

    assert refresh.mode == "incremental"
    assert (refresh.records_changed, refresh.records_read, refresh.people) == (1, 1, 1)
    assert_same_as_a_full_run(store)


def test_a_record_moved_to_another_person_recomputes_both(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    stored(store, raw_row("2", raw_id=BOB, completed_at=at("2022-05-04 10:00")))
    refresh = refresh_outputs(store)

    assert refresh.people == 2
    assert_same_as_a_full_run(store)


def test_a_withdrawn_record_leaves_the_ledger(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    stored(
        store,
        bare_withdrawal("1", at("2022-06-01 00:00")),
        bare_withdrawal("4", at("2022-06-01 00:00")),
    )
    refresh_outputs(store)

    assert set(store.read_table("completion")["record_key"]) == {"ta_yx:2", "ta_yx:3"}
    assert_same_as_a_full_run(store)


def test_a_new_person_and_a_new_quarantined_record_are_added(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    stored(store, raw_row("5", raw_id=CAROL, name="王五"), raw_row("6", raw_id="37092119800101"))
    refresh_outputs(store)

    assert len(store.read_table("completion")) == 6
    assert_same_as_a_full_run(store)


def test_a_date_in_the_future_is_judged_again_by_every_refresh(store: Store) -> None:
    history(store)
    stored(
        store,
        raw_row(
            "7",
            raw_id=CAROL,
            completed_at=pd.Timestamp.now(tz="Asia/Shanghai") + pd.Timedelta(days=400),
        ),
    )
    refresh_outputs(store)

    refresh = refresh_outputs(store)

    assert refresh.records_changed == 0
    assert refresh.people == 1
    assert_same_as_a_full_run(store)


def test_other_rules_numbers_mean_a_full_refresh(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    refresh = refresh_outputs(store, config=RulesConfig(daily_cap=6.0))

    assert refresh.mode == "full"


def test_the_rules_fingerprint_is_stable_and_follows_the_numbers() -> None:
    assert rules_fingerprint() == rules_fingerprint()
    assert rules_fingerprint() != rules_fingerprint(RulesConfig(annual_required=72.0))
    assert rules_fingerprint() != rules_fingerprint(employer_types={"某公司": "enterprise"})


def test_the_stored_d4_counts_equal_the_rules_counts(store: Store) -> None:
    history(store)

    refresh_outputs(store)

    pd.testing.assert_frame_equal(
        store.state_counts(), reconciliation_counts(store.read_table("completion"))
    )


def year_counted(completion: pd.DataFrame, year: int) -> list[pd.DataFrame]:
    """What `Store.year_counts` must say, counted from the ledger's rows in pandas."""
    rows = completion[completion["credited_year"].fillna(completion["pull_year"]) == year]
    rows = rows.assign(month=rows["completed_at"].dt.tz_convert("Asia/Shanghai").dt.month)
    quarantined = rows[rows["state"] == "quarantined"]

    def summed(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
        return frame.groupby(keys, dropna=False).size().rename("records").reset_index()

    return [
        summed(rows, ["platform", "state"]),
        summed(quarantined, ["city", "employer", "reason"]),
        summed(rows.dropna(subset=["month"]), ["platform", "month"]),
    ]


def test_the_counts_kept_through_a_night_equal_a_count_of_the_ledger(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    stored(
        store,
        bare_withdrawal("1", at("2022-06-01 00:00")),
        raw_row("5", raw_id=CAROL, name="王五", completed_at=at("2022-11-30 20:00")),
        raw_row("6", raw_id="37092119800101"),
    )
    refresh_outputs(store)

    completion = store.read_table("completion")
    pd.testing.assert_frame_equal(store.state_counts(), reconciliation_counts(completion))
    kept = store.year_counts(2022)
    for found, expected in zip(
        (kept.states, kept.quarantined, kept.months), year_counted(completion, 2022), strict=True
    ):
        pd.testing.assert_frame_equal(found, expected, check_dtype=False)


def test_a_count_whose_rows_all_left_the_ledger_is_not_reported(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    stored(store, bare_withdrawal("4", at("2022-06-01 00:00")))
    refresh_outputs(store)

    pd.testing.assert_frame_equal(
        store.state_counts(), reconciliation_counts(store.read_table("completion"))
    )
    assert store.year_counts(2022).quarantined.empty


def test_a_record_sent_again_unchanged_only_moves_its_sighting(store: Store) -> None:
    history(store)
    refresh_outputs(store)

    stored(store, raw_row("3", raw_id=BOB, name="李四", pulled_at=at("2022-07-01 00:00")))
    refresh = refresh_outputs(store)

    assert (refresh.records_changed, refresh.people) == (0, 0)
    ledger = store.read_table("completion").set_index("record_key")
    assert ledger.loc["ta_yx:3", "last_seen_at"] == at("2022-07-01 00:00")
    assert_same_as_a_full_run(store)


def years_of_alice(store: Store, *extra: dict[str, object]) -> None:
    stored(
        store,
        raw_row("a21", raw_id=ALICE, completed_at=at("2021-03-01 10:00")),
        raw_row("b21", raw_id=ALICE, completed_at=at("2021-04-01 10:00")),
        raw_row("a22", raw_id=ALICE),
        *extra,
    )


def test_a_change_recomputes_only_the_years_it_touches(store: Store) -> None:
    years_of_alice(store)
    refresh_outputs(store)

    stored(store, raw_row("a22", raw_id=ALICE, hours=3.0))
    refresh = refresh_outputs(store, full_share=1.0)

    assert refresh.records_read == 1
    assert_same_as_a_full_run(store)


def test_a_makeup_record_ties_the_year_it_is_credited_to(store: Store) -> None:
    makeup = {"makeup": True, "makeup_year": 2021}
    years_of_alice(store, raw_row("m22", raw_id=ALICE, **makeup))
    refresh_outputs(store)

    stored(store, raw_row("m22", raw_id=ALICE, hours=3.0, **makeup))
    refresh = refresh_outputs(store, full_share=1.0)

    assert refresh.records_read == 4  # the makeup record ties 2022 (its day) and 2021
    assert_same_as_a_full_run(store)


def test_a_shared_certificate_ties_records_across_years(store: Store) -> None:
    years_of_alice(store, raw_row("c20", raw_id=ALICE, completed_at=at("2020-03-01 10:00")))
    refresh_outputs(store)

    stored(store, raw_row("a22", raw_id=ALICE, certificate_no="cert-c20"))
    refresh = refresh_outputs(store, full_share=1.0)

    assert refresh.records_read == 2
    assert store.read_table("completion").set_index("record_key").loc["ta_yx:a22", "state"] == (
        "merged"
    )
    assert_same_as_a_full_run(store)


def test_changes_to_a_large_share_of_the_history_mean_a_full_refresh(store: Store) -> None:
    years_of_alice(store)
    refresh_outputs(store)

    stored(store, raw_row("a22", raw_id=ALICE, hours=3.0))
    refresh = refresh_outputs(store, full_share=0.2)

    assert refresh.mode == "full"
