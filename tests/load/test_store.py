"""The store on SQLite and PostgreSQL: migrations, idempotent and atomic loads, upserts, reads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from pipelines.rules.versions import latest_versions
from pipelines.shards import id_buckets
from pipelines.store import Progress, Scope, Store, default_database_url
from pipelines.store.dialect import LOOKUP_PAGE_COST
from schemas.tables import TABLES, VERSION_TABLE, UtcDateTime, metadata
from tests.load.frames import (
    at,
    bank,
    bank_row,
    bare_withdrawal,
    conflicts,
    id_number,
    ledger,
    ledger_row,
    raw_frame,
    raw_row,
)

ALICE = id_number("37092119800101001")
BOB = id_number("37068219900215002")
CAROL = id_number("37060219751231003")


class Interrupted(Exception):
    """The failure a test injects into a load."""


def fail_at(step: str, rows: int = 1) -> Progress:
    """A progress hook that kills the load once `step` has written `rows` rows."""

    def hook(seen: str, written: int) -> None:
        if seen == step and written >= rows:
            raise Interrupted(f"{step} at {written}")

    return hook


def tables(store: Store) -> dict[str, pd.DataFrame]:
    names = ("raw_record", "watermark", "completion", "hours_bank", "name_conflict")
    return {name: store.read_table(name) for name in names}


def assert_same_tables(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    for name in left:
        pd.testing.assert_frame_equal(
            left[name].drop(columns=["updated_at"], errors="ignore"),
            right[name].drop(columns=["updated_at"], errors="ignore"),
            obj=name,
        )


def outputs(*people: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rows = [ledger_row(f"{p[-4:]}-{n}", p) for p in people for n in range(3)]
    return ledger(*rows), bank(*(bank_row(p) for p in people)), conflicts((people[0], "张三|张叁"))


def test_migrate_creates_exactly_the_tables_of_the_metadata(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        diffs = compare_metadata(context, metadata)
    assert diffs == []


def test_migrate_on_an_existing_database_keeps_its_rows(database_url: str) -> None:
    store = Store.from_url(database_url)
    store.migrate("0001")
    with store.engine.begin() as conn:
        for key in ("1", "2"):
            conn.execute(
                text(
                    "INSERT INTO raw_record (platform, source_key, record_key, raw_id, makeup, "
                    f"withdrawn, pull_year) VALUES ('ta_yx', '{key}', 'ta_yx:{key}', "
                    "'370921198001010011', false, false, 2022)"
                )
            )
    columns = ("record_key", "raw_id", "makeup", "withdrawn", "pull_year")
    before = store.read_table("raw_record", columns=columns)

    store.migrate()

    assert_same_tables({"raw": before}, {"raw": store.read_table("raw_record", columns=columns)})
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM xueshi_schema_version")).scalar() == (
            "0011"
        )
    store.dispose()


def test_migrate_gives_stored_records_their_person_bucket(database_url: str) -> None:
    store = Store.from_url(database_url)
    store.migrate("0002")
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO raw_record (platform, source_key, record_key, raw_id, makeup, "
                "withdrawn, pull_year) VALUES ('ta_yx', '1', 'ta_yx:1', "
                f"'{ALICE[:6] + ALICE[8:17]}', false, false, 2022)"
            )
        )

    store.migrate()

    stored = store.read_table("raw_record", columns=("person_bucket",))
    assert stored["person_bucket"].tolist() == id_buckets(pd.Series([ALICE])).tolist()
    store.dispose()


def test_migrate_counts_a_ledger_stored_before_the_counts_were_kept(database_url: str) -> None:
    store = Store.from_url(database_url)
    store.migrate("0008")
    with store.engine.begin() as conn:
        for key, state in (("1", "credited"), ("2", "credited"), ("3", "not_credited")):
            conn.execute(
                text(
                    "INSERT INTO completion (record_key, platform, id_number, completed_at, "
                    "credited_year, makeup, state, pull_year, person_bucket) VALUES "
                    f"('ta_yx:{key}', 'ta_yx', '{ALICE}', '2022-05-03T02:00:00.000000Z', 2022, "
                    f"false, '{state}', 2022, 0)"
                )
            )

    store.migrate()

    d4 = store.state_counts()
    assert d4[["platform", "year", "raw", "credited", "not_credited"]].to_numpy().tolist() == [
        ["ta_yx", 2022, 3, 2, 1]
    ]
    assert store.year_counts(2022).months[["month", "records"]].to_numpy().tolist() == [[5, 3]]
    store.dispose()


def test_store_batch_twice_leaves_identical_tables(store: Store) -> None:
    batch = raw_frame(raw_row("1"), raw_row("2"), raw_row("3", withdrawn=True))
    store.store_batch("ta_yx", 2022, batch, {"updateTime": "2022-05-03 10:05:00"})
    once = tables(store)

    store.store_batch("ta_yx", 2022, batch, {"updateTime": "2022-05-03 10:05:00"})

    assert_same_tables(once, tables(store))


def test_replace_outputs_twice_leaves_identical_tables(store: Store) -> None:
    store.replace_outputs(*outputs(ALICE, BOB))
    once = tables(store)

    store.replace_outputs(*outputs(ALICE, BOB))

    assert_same_tables(once, tables(store))


def test_rows_in_any_order_and_with_any_index_are_stored_as_given(store: Store) -> None:
    completion = ledger(
        *(
            ledger_row(f"{n}", ALICE, completed_at=at(f"2022-05-{n:02d} 10:00"), hours_credited=n)
            for n in (3, 1, 2)
        )
    ).set_axis([10, 5, 7])

    store.replace_outputs(completion, bank(bank_row(ALICE)), conflicts())

    stored = store.read_table("completion")
    expected = completion.sort_values("record_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(stored.drop(columns="pull_year"), expected)


def test_the_ledger_is_written_person_by_person_whatever_the_order_of_its_keys(
    store: Store,
) -> None:
    people = (ALICE, BOB, CAROL, ALICE, BOB, CAROL)
    years = (2022, 2021, 2022, 2021, 2022, 2021)
    completion = ledger(
        *(
            ledger_row(f"{n}", person, credited_year=year)
            for n, (person, year) in enumerate(zip(people, years, strict=True))
        )
    )

    store.replace_outputs(completion, bank(bank_row(ALICE)), conflicts())

    position = "rowid" if store.engine.dialect.name == "sqlite" else "ctid"
    with store.engine.connect() as conn:
        written = conn.execute(
            text(f"SELECT id_number, credited_year FROM completion ORDER BY {position}")
        ).all()
    assert [tuple(row) for row in written] == sorted(zip(people, years, strict=True))


def test_interrupted_batch_leaves_the_previous_state_and_the_retry_converges(
    store: Store, database_url: str
) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {"page": 1})
    previous = tables(store)
    batch = raw_frame(raw_row("1", score=50.0), raw_row("2"), raw_row("3"))
    failing = Store.from_url(database_url, chunk_rows=1, progress=fail_at("raw_record:rows", 2))

    with pytest.raises(Interrupted):
        failing.store_batch("ta_yx", 2022, batch, {"page": 2})
    failing.dispose()

    assert_same_tables(previous, tables(store))
    store.store_batch("ta_yx", 2022, batch, {"page": 2})
    converged = tables(store)
    assert store.watermark("ta_yx", 2022) == {"page": 2}
    assert converged["raw_record"]["score"].tolist() == [50.0, 90.0, 90.0]


def test_interrupted_replace_leaves_the_previous_ledger_and_the_retry_converges(
    store: Store, database_url: str
) -> None:
    store.replace_outputs(*outputs(ALICE))
    previous = tables(store)
    failing = Store.from_url(database_url, chunk_rows=2, progress=fail_at("completion", 4))

    with pytest.raises(Interrupted):
        failing.replace_outputs(*outputs(BOB, CAROL))
    failing.dispose()

    assert_same_tables(previous, tables(store))
    store.replace_outputs(*outputs(BOB, CAROL))
    retried = tables(store)
    store.replace_outputs(*outputs(BOB, CAROL))
    assert_same_tables(retried, tables(store))
    assert set(retried["completion"]["id_number"]) == {BOB, CAROL}


def test_a_failure_between_batch_and_watermark_leaves_neither(
    store: Store, database_url: str
) -> None:
    failing = Store.from_url(database_url, progress=fail_at("raw_record"))

    with pytest.raises(Interrupted):
        failing.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {"page": 1})
    failing.dispose()

    assert store.raw_records().empty
    assert store.watermark("ta_yx", 2022) is None


def test_a_failure_writing_the_watermark_leaves_no_records(store: Store, database_url: str) -> None:
    failing = Store.from_url(database_url, progress=fail_at("watermark"))

    with pytest.raises(Interrupted):
        failing.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {"page": 1})
    failing.dispose()

    assert store.raw_records().empty
    assert store.watermark("ta_yx", 2022) is None


def test_upsert_takes_the_new_version_and_keeps_first_seen_at(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {"page": 1})
    newer = raw_row(
        "1",
        score=60.0,
        certificate_no="CERT-NEW",
        updated_at=at("2022-08-01 09:00"),
        pulled_at=at("2022-08-02 02:00"),
    )

    store.store_batch("ta_yx", 2022, raw_frame(newer), {"page": 2})

    row = store.raw_records().iloc[0]
    assert (row["score"], row["certificate_no"]) == (60.0, "CERT-NEW")
    assert row["first_seen_at"] == at("2022-06-01 02:00")
    assert row["last_seen_at"] == at("2022-08-02 02:00")


def test_a_first_load_of_a_partition_holding_a_key_of_another_upserts_it(store: Store) -> None:
    store.store_batch("ta_yx", 2021, raw_frame(raw_row("1", pull_year=2021)), {"page": 1})
    moved = raw_row("1", score=60.0, pulled_at=at("2022-08-02 02:00"))

    store.store_batch("ta_yx", 2022, raw_frame(moved, raw_row("2")), {"page": 1})

    rows = store.raw_records().set_index("source_key")
    assert list(rows.index) == ["1", "2"]
    assert (rows.loc["1", "score"], rows.loc["1", "pull_year"]) == (60.0, 2022)
    assert rows.loc["1", "first_seen_at"] == at("2022-06-01 02:00")


def test_versions_within_a_batch_collapse_to_the_latest_update(store: Store) -> None:
    batch = raw_frame(
        raw_row("1", score=70.0, updated_at=at("2022-05-04 00:00"), pulled_at=at("2022-06-01")),
        raw_row("1", score=80.0, updated_at=at("2022-05-03 00:00"), pulled_at=at("2022-06-02")),
    )

    assert store.store_batch("ta_yx", 2022, batch, {}) == 1

    row = store.raw_records().iloc[0]
    assert row["score"] == 70.0
    assert (row["first_seen_at"], row["last_seen_at"]) == (at("2022-06-01"), at("2022-06-02"))


def test_a_bare_withdrawal_flips_withdrawn_and_keeps_the_stored_values(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {"page": 1})
    stored = store.raw_records().iloc[0]

    store.store_batch("ta_yx", 2022, raw_frame(bare_withdrawal("1", at("2022-09-01"))), {})

    row = store.raw_records().iloc[0]
    assert row["withdrawn"]
    assert row["last_seen_at"] == at("2022-09-01")
    kept = stored.drop(["withdrawn", "last_seen_at"])
    pd.testing.assert_series_equal(row.drop(["withdrawn", "last_seen_at"]), kept)


def test_a_bare_withdrawal_after_a_version_in_the_same_batch_keeps_that_version(
    store: Store,
) -> None:
    version = raw_row("1", score=75.0, updated_at=None)  # a snapshot family: no update times
    batch = raw_frame(version, bare_withdrawal("1", at("2022-06-02")))

    store.store_batch("ta_yx", 2022, batch, {})

    row = store.raw_records().iloc[0]
    assert (row["withdrawn"], row["score"], row["raw_id"]) == (True, 75.0, ALICE)


def test_a_record_seen_again_after_a_withdrawal_is_restored(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {})
    store.store_batch("ta_yx", 2022, raw_frame(bare_withdrawal("1", at("2022-09-01"))), {})

    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1", pulled_at=at("2022-10-01"))), {})

    assert not store.raw_records().iloc[0]["withdrawn"]


def batch_numbers(store: Store) -> dict[str, tuple[int, int]]:
    """Each raw row's (batch that last changed it, batch that last saw it), by record key."""
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT record_key, batch_seq, seen_batch FROM raw_record")
        return {key: (changed, seen) for key, changed, seen in rows}


def test_a_stale_version_pulled_later_changes_only_the_sighting(store: Store) -> None:
    newer = raw_row("1", score=60.0, updated_at=at("2022-08-01"), pulled_at=at("2022-08-02"))
    store.store_batch("ta_yx", 2022, raw_frame(newer), {})
    stale = raw_row("1", score=90.0, updated_at=at("2022-05-03"), pulled_at=at("2022-09-01"))

    store.store_batch("ta_yx", 2022, raw_frame(stale), {})

    row = store.raw_records().iloc[0]
    assert (row["score"], row["updated_at"], row["last_seen_at"]) == (
        60.0,
        at("2022-08-01"),
        at("2022-09-01"),
    )
    assert batch_numbers(store) == {"ta_yx:1": (1, 2)}  # seen by 2, changed by none after 1


def test_the_same_version_pulled_again_moves_only_its_pull_and_sighting(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {})
    stored = store.raw_records().iloc[0]

    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1", pulled_at=at("2022-09-01"))), {})

    row = store.raw_records().iloc[0]
    assert (row["pulled_at"], row["last_seen_at"]) == (at("2022-09-01"), at("2022-09-01"))
    moved = ["pulled_at", "last_seen_at"]
    pd.testing.assert_series_equal(row.drop(moved), stored.drop(moved))
    assert batch_numbers(store) == {"ta_yx:1": (1, 2)}


def test_a_batch_sent_again_changes_only_its_changed_row(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(*(raw_row(k) for k in "123")), {})
    later = at("2022-09-01")

    again = [raw_row(k, pulled_at=later) for k in "13"] + [
        raw_row("2", score=60.0, updated_at=at("2022-08-01"), pulled_at=later)
    ]
    store.store_batch("ta_yx", 2022, raw_frame(*again), {})

    rows = store.raw_records().set_index("source_key")
    assert rows["score"].to_dict() == {"1": 90.0, "2": 60.0, "3": 90.0}
    assert (rows["last_seen_at"] == later).all()
    assert batch_numbers(store) == {"ta_yx:1": (1, 2), "ta_yx:2": (2, 2), "ta_yx:3": (1, 2)}


def test_a_tombstone_beats_its_twin_stored_before_it(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {})

    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1", withdrawn=True)), {})

    assert store.raw_records().iloc[0]["withdrawn"]


VERSION = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["1", "2"]),
        "updated_day": st.one_of(st.none(), st.integers(1, 3)),
        "pulled_day": st.integers(1, 3),
        "withdrawn": st.booleans(),
        "score": st.sampled_from([60.0, 70.0]),
    }
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(versions=st.lists(VERSION, min_size=1, max_size=6))
def test_the_stored_row_is_d1s_newest_version_in_any_pull_order(
    store: Store, versions: list[dict[str, Any]]
) -> None:
    rows = [
        raw_row(
            v["key"],
            score=v["score"],
            updated_at=None if v["updated_day"] is None else at(f"2022-07-0{v['updated_day']}"),
            pulled_at=at(f"2022-08-0{v['pulled_day']}"),
            withdrawn=v["withdrawn"],
            payload=f'{{"score":{v["score"]}}}',
        )
        for v in versions
    ]
    with store.transaction() as conn:
        store.dialect.clear(conn, ["raw_record"])

    for row in rows:  # one batch per version, in the order drawn
        store.store_batch("ta_yx", 2022, raw_frame(row), {})

    stored = store.raw_records()
    live = stored[~stored["withdrawn"]].reset_index(drop=True)
    expected = latest_versions(raw_frame(*rows))
    columns = ["record_key", "score", "updated_at", "pulled_at", "payload"]
    pd.testing.assert_frame_equal(live[columns], expected[columns], check_dtype=False)


def test_known_keys_are_the_partitions_records_not_withdrawn(store: Store) -> None:
    store.store_batch(
        "ta_yx", 2022, raw_frame(raw_row("1"), raw_row("2"), raw_row("3", withdrawn=True)), {}
    )
    store.store_batch("ta_yx", 2021, raw_frame(raw_row("4", pull_year=2021)), {})

    assert store.known_keys("ta_yx", 2022) == frozenset({"1", "2"})
    assert store.known_keys("yt_ldu", 2022) == frozenset()


def test_a_partitions_live_count_leaves_out_withdrawn_records(store: Store) -> None:
    store.store_batch(
        "ta_yx", 2022, raw_frame(raw_row("1"), raw_row("2"), raw_row("3", withdrawn=True)), {}
    )
    store.store_batch("ta_yx", 2021, raw_frame(raw_row("4", pull_year=2021)), {})

    assert (store.live_count("ta_yx", 2022), store.live_count("yt_ldu", 2022)) == (2, 0)


def test_watermark_is_none_before_the_first_batch_and_the_latest_after(store: Store) -> None:
    assert store.watermark("ta_yx", 2022) is None
    store.store_batch("ta_yx", 2022, raw_frame(), {"after": ["2022-01-01 00:00:00", "a"]})
    store.store_batch("ta_yx", 2022, raw_frame(), {"after": ["2022-02-01 00:00:00", "b"]})

    assert store.watermark("ta_yx", 2022) == {"after": ["2022-02-01 00:00:00", "b"]}


def test_a_batch_with_rows_of_another_partition_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="another partition"):
        store.store_batch("ta_yx", 2021, raw_frame(raw_row("1")), {})


def test_raw_records_filter_by_platform(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1")), {})
    store.store_batch("yt_ldu", 2022, raw_frame(raw_row("1", platform="yt_ldu")), {})

    assert store.raw_records(["yt_ldu"])["record_key"].tolist() == ["yt_ldu:1"]
    assert store.raw_records()["record_key"].tolist() == ["ta_yx:1", "yt_ldu:1"]


def test_timestamps_round_trip_as_the_same_instant_in_asia_shanghai(store: Store) -> None:
    utc_time = pd.Timestamp("2022-12-31 17:30:00.123456", tz="UTC")
    row = raw_row("1", completed_at=utc_time, updated_at=None)

    store.store_batch("ta_yx", 2022, raw_frame(row), {})

    stored = store.raw_records().iloc[0]
    assert stored["completed_at"] == utc_time
    assert str(stored["completed_at"]) == "2023-01-01 01:30:00.123456+08:00"
    assert pd.isna(stored["updated_at"])
    assert str(store.raw_records()["completed_at"].dtype) == "datetime64[us, Asia/Shanghai]"


def test_single_row_timestamps_round_trip_through_the_column_type(store: Store) -> None:
    moment = datetime(2022, 3, 1, 12, 0, 0, 7, tzinfo=timezone(timedelta(hours=-5)))
    row = {"platform": "ta_yx", "year": 2022, "state": "{}", "updated_at": moment}

    with store.transaction() as conn:
        conn.execute(TABLES["watermark"].insert().values(**row))

    stored = store.read_table("watermark").iloc[0]
    assert stored["updated_at"] == moment
    assert str(stored["updated_at"].tz) == "Asia/Shanghai"


def test_the_timestamp_type_refuses_naive_datetimes(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        UtcDateTime().process_bind_param(datetime(2022, 1, 1), store.engine.dialect)


def alice_scope(*records: str) -> Scope:
    years = pd.DataFrame({"id_number": [ALICE], "year": [2022]})
    return Scope([f"ta_yx:{r}" for r in records], years, [ALICE])


def test_partial_replace_touches_only_its_scope(store: Store) -> None:
    store.replace_outputs(*outputs(ALICE, BOB))
    bob_before = store.read_table("completion").query("id_number == @BOB")
    quarantined = ledger_row("no-id", None, state="quarantined", reason="invalid_id_number")
    completion = ledger(ledger_row("alice-new", ALICE), quarantined)
    old = [f"{ALICE[-4:]}-{n}" for n in range(3)]

    store.replace_outputs(
        completion,
        bank(bank_row(ALICE)),
        conflicts(),
        scope=alice_scope(*old, "alice-new", "no-id"),
    )

    after = store.read_table("completion")
    assert set(after.query("id_number == @ALICE")["record_key"]) == {"ta_yx:alice-new"}
    assert after["id_number"].isna().sum() == 1
    pd.testing.assert_frame_equal(
        after.query("id_number == @BOB").reset_index(drop=True), bob_before.reset_index(drop=True)
    )
    assert store.read_table("name_conflict").empty


def test_a_full_replace_numbers_every_year_it_has_had(store: Store) -> None:
    old = ledger_row("old", ALICE, credited_year=2021)
    store.replace_outputs(ledger(old), bank(bank_row(ALICE, year=2021)), conflicts())

    store.replace_outputs(*outputs(ALICE))

    assert store.output_years() == {2021: 2, 2022: 2}


def test_a_partial_replace_numbers_only_the_years_of_its_scope(store: Store) -> None:
    old = ledger_row("old", ALICE, credited_year=2021)
    completion, hours_bank, _ = outputs(ALICE)
    store.replace_outputs(
        pd.concat([completion, ledger(old)]),
        pd.concat([hours_bank, bank(bank_row(ALICE, year=2021))]),
        conflicts(),
    )

    store.replace_outputs(
        ledger(ledger_row("alice-new", ALICE)),
        bank(bank_row(ALICE)),
        conflicts(),
        scope=alice_scope("alice-new"),
    )

    assert store.output_years() == {2021: 1, 2022: 2}


def test_a_partial_replace_names_the_files_it_changed_before_and_after(store: Store) -> None:
    store.replace_outputs(*outputs(ALICE, BOB))

    store.replace_outputs(
        ledger(ledger_row("alice-new", ALICE)),
        bank(bank_row(ALICE, employer="新单位")),
        conflicts(),
        scope=alice_scope("alice-new"),
    )

    assert store.changed_files(2022, 1) == {"泰安市第一中学", "新单位"}
    assert store.changed_files(2022, 2) == set()


def test_file_sizes_of_named_files_count_only_those_files(store: Store) -> None:
    completion, hours_bank, names = outputs(ALICE, BOB, CAROL)
    hours_bank.loc[hours_bank["id_number"] == BOB, "employer"] = "新单位"
    hours_bank.loc[hours_bank["id_number"] == CAROL, "employer"] = None
    store.replace_outputs(completion, hours_bank, names)

    assert store.file_sizes(2022, "?") == {"泰安市第一中学": 3, "新单位": 3, "?": 3}
    assert store.file_sizes(2022, "?", {"新单位", "无此单位"}) == {"新单位": 3}
    assert store.file_sizes(2022, "?", {"?"}) == {"?": 3}


def test_year_counts_put_a_record_in_its_month_in_shanghai_to_the_microsecond(
    store: Store,
) -> None:
    late = ledger_row("late", ALICE, completed_at=at("2022-03-31 23:59:59.999999"))
    early = ledger_row("early", ALICE, completed_at=at("2022-04-01 00:00:00"))
    store.replace_outputs(ledger(late, early), bank(bank_row(ALICE)), conflicts())

    months = store.year_counts(2022).months

    assert months[["month", "records"]].to_numpy().tolist() == [[3, 1], [4, 1]]


def test_after_a_full_replace_every_file_is_to_be_compared(store: Store) -> None:
    store.replace_outputs(*outputs(ALICE))

    store.replace_outputs(*outputs(ALICE, BOB))

    assert store.changed_files(2022, 1) is None
    assert store.changed_files(2022, 2) == set()


def test_partial_replace_refuses_rows_outside_its_scope(store: Store) -> None:
    with pytest.raises(ValueError, match="outside its scope"):
        store.replace_outputs(*outputs(ALICE, BOB), scope=alice_scope())


def test_append_reconciliation_replaces_the_rows_of_a_repeated_run(store: Store) -> None:
    counts = pd.DataFrame(
        {
            "platform": ["ta_yx", "yt_ldu"],
            "year": [2022, 2022],
            "raw": [5, 2],
            "credited": [3, 1],
            "merged": [1, 0],
            "not_credited": [1, 0],
            "quarantined": [0, 1],
        }
    )
    run_at = at("2022-06-01 02:00")
    store.append_reconciliation("run-1", run_at, counts)

    store.append_reconciliation("run-1", run_at, counts.assign(raw=[6, 2], credited=[4, 1]))

    stored = store.read_table("reconciliation")
    assert stored["raw"].tolist() == [6, 2]
    assert (stored["run_at"] == run_at).all()


def test_run_counts_are_the_counts_a_run_stored_and_none_for_another_run(store: Store) -> None:
    counts = pd.DataFrame(
        {"platform": ["ta_yx"], "year": [2022], "raw": [5], "credited": [3], "merged": [1]}
        | {"not_credited": [1], "quarantined": [0]}
    )
    store.append_reconciliation("run-1", at("2022-06-01 02:00"), counts)

    pd.testing.assert_frame_equal(store.run_counts("run-1"), counts, check_dtype=False)
    assert store.run_counts("run-2") is None


def test_read_table_names_the_known_tables_when_asked_for_another(store: Store) -> None:
    with pytest.raises(KeyError, match="completion"):
        store.read_table("users")


def test_default_database_url_is_a_sqlite_file_in_the_data_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)

    assert default_database_url({}) == f"sqlite:///{tmp_path / 'data' / 'xueshi.db'}"
    assert (tmp_path / "data").is_dir()


def test_default_database_url_follows_xueshi_data_dir(tmp_path) -> None:
    folder = tmp_path / "elsewhere"

    url = default_database_url({"XUESHI_DATA_DIR": str(folder)})

    assert url == f"sqlite:///{folder / 'xueshi.db'}"


@pytest.mark.postgres
def test_a_lookup_transaction_prices_random_reads_as_cached_pages_until_it_ends(
    postgres_url: str,
) -> None:
    store = Store.from_url(postgres_url)
    try:
        with store.engine.connect() as conn:
            with conn.begin():
                store.dialect.plan_lookups(conn)
                inside = conn.exec_driver_sql("SHOW random_page_cost").scalar_one()
            after = conn.exec_driver_sql("SHOW random_page_cost").scalar_one()
    finally:
        store.dispose()
    assert (float(inside), float(after)) == (LOOKUP_PAGE_COST, 4.0)
