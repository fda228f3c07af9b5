"""Person shards: any number of shards gives the same outputs, and no read holds more than one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from pipelines.provincial import update_provincial
from pipelines.refresh import plan_refresh, refresh_outputs, refresh_shard, rules_fingerprint
from pipelines.shards import BUCKETS, id_buckets, person_buckets, shards
from pipelines.store import Store
from sandbox.generator import Dataset, generate
from schemas.raw import RAW_COLUMNS, TZ
from schemas.tables import VERSION_TABLE, metadata

OUTPUTS = ("completion", "hours_bank", "name_conflict")
FIRST_PULL = pd.Timestamp("2026-01-01", tz=TZ)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(3_000, seed=3)


@pytest.fixture
def store(database_url: str, dataset: Dataset) -> Iterator[Store]:
    """The dataset's first epoch stored as the raw assets store it: a batch per partition."""
    opened = Store.from_url(database_url)
    opened.migrate()
    records = dataset.records.loc[dataset.records["epoch"] == 0]
    pulled = FIRST_PULL + pd.to_timedelta(np.arange(len(records)), unit="us")
    raw = records.assign(pulled_at=pulled, payload="{}")[list(RAW_COLUMNS)]
    for (platform, year), batch in raw.groupby(["platform", "pull_year"]):
        opened.store_batch(str(platform), int(year), batch, {"done": True})
    yield opened
    opened.dispose()


def outputs_and_files(store: Store, count: int, out: Path) -> dict[str, object]:
    refresh_outputs(store, full=True, shard_count=count)
    update_provincial(store, out, store.output_years())
    files = {
        path.relative_to(out).as_posix(): path.read_bytes() for path in sorted(out.rglob("*.xlsx"))
    }
    tables = {name: store.read_table(name) for name in OUTPUTS}
    return {**tables, "d4": store.state_counts(), "files": files}


def test_one_seven_and_sixty_four_shards_give_identical_outputs_and_files(
    store: Store, tmp_path: Path
) -> None:
    one = outputs_and_files(store, 1, tmp_path / "1")
    for count in (7, 64):
        other = outputs_and_files(store, count, tmp_path / str(count))
        for name in (*OUTPUTS, "d4"):
            pd.testing.assert_frame_equal(one[name], other[name], obj=f"{name} ({count})")
        assert one["files"] == other["files"], f"files differ with {count} shards"
    assert len(one["files"]) > 0


def test_sharded_outputs_equal_the_generators_truth(store: Store, dataset: Dataset) -> None:
    refresh_outputs(store, full=True, shard_count=7)

    truth = dataset.truth(epoch=0)
    ledger = store.read_table("completion")
    columns = [c for c in truth.completion.columns if c not in ("first_seen_at", "last_seen_at")]
    pd.testing.assert_frame_equal(
        ledger[columns].sort_values("record_key").reset_index(drop=True),
        truth.completion[columns].sort_values("record_key").reset_index(drop=True),
        check_dtype=False,
    )
    bank = store.read_table("hours_bank").drop(columns="person_bucket")
    pd.testing.assert_frame_equal(bank, truth.hours_bank, check_dtype=False)
    pd.testing.assert_frame_equal(store.state_counts(), truth.reconciliation, check_dtype=False)


def test_no_read_of_a_sharded_refresh_holds_more_than_one_shard(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = store.raw_records(payload=False)
    count = 16
    largest = max(int(raw["person_bucket"].between(s.first, s.last).sum()) for s in shards(count))
    reads: list[int] = []
    read = Store._read

    def counted(self: Store, name: str, **kwargs: object) -> pd.DataFrame:
        frame = read(self, name, **kwargs)
        reads.append(len(frame))
        return frame

    monkeypatch.setattr(Store, "_read", counted)
    refresh_outputs(store, full=True, shard_count=count)

    assert reads, "the refresh read nothing"
    assert max(reads) <= largest < len(raw) / 4


def test_a_full_refresh_leaves_the_schema_of_the_metadata(store: Store) -> None:
    refresh_outputs(store, full=True, shard_count=3)

    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, metadata) == []
        assert not [t for t in inspect(conn).get_table_names() if t.endswith("_next")]


def test_a_shard_written_again_keeps_its_rows_once(store: Store) -> None:
    plan = plan_refresh(store, rules_fingerprint(), full=True, shard_count=2)
    store.begin_full()
    for shard in (*plan.shards, plan.shards[0]):  # the first shard's step ran twice
        refresh_shard(store, plan, shard)
    store.finish_full(plan.state)
    twice = {name: store.read_table(name) for name in OUTPUTS}

    refresh_outputs(store, full=True, shard_count=2)

    for name in OUTPUTS:
        pd.testing.assert_frame_equal(twice[name], store.read_table(name), obj=name)


def test_the_outputs_stay_as_they_were_until_the_last_shard_of_a_full_refresh(
    store: Store,
) -> None:
    refresh_outputs(store, full=True, shard_count=2)
    before = {name: store.read_table(name) for name in (*OUTPUTS, "ledger_count")}
    plan = plan_refresh(store, rules_fingerprint(), full=True, shard_count=2)
    store.begin_full()

    refresh_shard(store, plan, plan.shards[0])  # the run dies before the second shard

    for name, frame in before.items():
        pd.testing.assert_frame_equal(frame, store.read_table(name), obj=name)


def test_a_persons_records_share_a_bucket_whatever_form_their_id_number_takes() -> None:
    long = "370921198001010018"
    forms = pd.Series([long, long[:6] + long[8:17], f"'{long}", f" {long} "], dtype="str")
    keys = pd.Series([f"ta_yx:{n}" for n in range(4)], dtype="str")

    buckets = person_buckets(forms, keys)

    assert set(buckets) == {int(id_buckets(pd.Series([long]))[0])}


def test_records_without_an_id_number_spread_by_their_own_key() -> None:
    keys = pd.Series([f"ta_yx:{n}" for n in range(1_000)], dtype="str")

    buckets = person_buckets(pd.Series([None] * 1_000, dtype="str"), keys)

    assert len(set(buckets)) > 500
    assert buckets.min() >= 0 and buckets.max() < BUCKETS


def test_shards_cover_every_bucket_once() -> None:
    covered = [b for s in shards(7) for b in range(s.first, s.last + 1)]

    assert covered == list(range(BUCKETS))


def test_the_files_read_a_year_a_few_employers_at_a_time_and_write_the_same_bytes(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = outputs_and_files(store, 4, tmp_path / "whole")["files"]
    batches: list[int] = []
    read = Store.file_rows

    def counted(self: Store, *args: object, **kwargs: object) -> tuple[pd.DataFrame, ...]:
        credited, bank = read(self, *args, **kwargs)
        batches.append(len(credited))
        return credited, bank

    monkeypatch.setattr("pipelines.provincial.xlsx.BATCH_ROWS", 40)
    monkeypatch.setattr(Store, "file_rows", counted)
    batched = outputs_and_files(store, 4, tmp_path / "batched")["files"]

    sizes = [n for year in range(2017, 2023) for n in store.file_sizes(year, "?").values()]
    assert batched == whole
    assert len(batches) > 6
    assert max(batches) <= max(40, *sizes)
