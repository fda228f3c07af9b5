"""R3's verdicts are kept per person: a night judges again only the people its writes changed,
and what is kept then equals a judgement of the whole hours bank."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import dagster as dg
import pandas as pd
import pytest

from pipelines.assets.answers import title_eligibility_asset
from pipelines.assets.ledger import employer_types
from pipelines.refresh import refresh_outputs
from pipelines.resources import Database
from pipelines.rules.eligibility import title_eligibility, title_requirements
from pipelines.store import Store
from schemas.ledger import ELIGIBILITY_DTYPES
from schemas.raw import TZ
from tests.answers.conftest import load
from tests.conftest import fresh_postgres


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(
    request: pytest.FixtureRequest, raw: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    with ExitStack() as stack:
        if request.param == "postgres":
            url = stack.enter_context(fresh_postgres(request.getfixturevalue("postgres_admin_url")))
        else:
            url = f"sqlite:///{tmp_path_factory.mktemp('verdicts') / 'xueshi.db'}"
        loaded = load(url, raw)
        stack.callback(loaded.dispose)
        yield loaded


Judge = Callable[[Store], dict[str, object]]


@pytest.fixture
def judge(instance: dg.DagsterInstance) -> Judge:
    """A run of the title asset alone, returning its metadata."""

    def run(store: Store) -> dict[str, object]:
        url = store.engine.url.render_as_string(hide_password=False)
        result = dg.materialize(
            [title_eligibility_asset], resources={"database": Database(url=url)}, instance=instance
        )
        metadata = result.asset_materializations_for_node("title_eligibility")[0].metadata
        return {key: value.value for key, value in metadata.items()}

    return run


def kept(store: Store) -> pd.DataFrame:
    return store.read_table("title_verdict", columns=list(ELIGIBILITY_DTYPES)).reset_index(
        drop=True
    )


def whole_bank(store: Store) -> pd.DataFrame:
    bank = store.read_table("hours_bank")
    verdicts = title_eligibility(title_requirements(bank, employer_types()))
    return verdicts.sort_values("id_number", ignore_index=True)


def a_night_for_one_yantai_person(store: Store, raw: pd.DataFrame) -> str:
    """A new professional completion of one Yantai person, stored and refreshed as a night."""
    yantai = store.read_table("hours_bank", columns=("id_number",), where=("city = 'yantai'",))
    person = str(yantai["id_number"].iloc[0])
    ledger = store.ledger_rows(("id_number", "platform"), people={person})
    keys = raw["platform"] + ":" + raw["source_key"]
    row = raw.loc[keys.eq(ledger["record_key"].iloc[0])].copy()
    row["source_key"] = "night-1"
    row["course_title"] = "夜间新课"
    row["completed_at"] = pd.Timestamp("2022-11-30 10:00", tz=TZ)
    row["pulled_at"] = pd.Timestamp.now(tz=TZ)
    row["pull_year"] = 2022
    store.store_batch(str(row["platform"].iloc[0]), 2022, row, {"done": True})
    refresh_outputs(store)
    return person


def test_a_first_run_judges_every_person_as_the_whole_bank_would(
    store: Store, judge: Judge
) -> None:
    figures = judge(store)

    assert figures["judged"] == "every person"
    pd.testing.assert_frame_equal(kept(store), whole_bank(store), check_dtype=False)


def test_a_night_judges_only_its_people_and_keeps_every_verdict_right(
    store: Store, raw: pd.DataFrame, judge: Judge
) -> None:
    first = judge(store)
    since = store.verdicts_as_of()
    person = a_night_for_one_yantai_person(store, raw)
    changed = store.changed_people(since or 0)

    figures = judge(store)

    assert changed is not None and person in changed
    assert len(changed) < int(str(first["dagster/row_count"]))
    assert str(figures["judged"]).endswith(f": {len(changed)}")
    pd.testing.assert_frame_equal(kept(store), whole_bank(store), check_dtype=False)


def test_after_a_full_refresh_every_person_is_judged_again(store: Store, judge: Judge) -> None:
    judge(store)
    refresh_outputs(store, full=True)

    assert judge(store)["judged"] == "every person"


def test_a_run_with_nothing_changed_judges_no_one_and_counts_the_same(
    store: Store, judge: Judge
) -> None:
    first = judge(store)

    again = judge(store)

    assert str(again["judged"]).endswith(": 0")
    assert again["dagster/row_count"] == first["dagster/row_count"]
    assert again["eligible"] == first["eligible"]
