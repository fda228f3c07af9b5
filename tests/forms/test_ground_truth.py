"""Forms in the generated data: the rules, and the store on both engines, equal the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connectors.forms import FormFile, form_files, form_records, read_form
from pipelines.forms import load_year, read_year_register, unit_cities
from pipelines.refresh import refresh_outputs
from pipelines.rules import apply_rules
from pipelines.store import Store
from sandbox.generator import Dataset, Truth, generate
from sandbox.generator.forms import FormsWorld, forms_world, truth_with_forms
from schemas.raw import RAW_COLUMNS, TZ

RECORDS = 3_000
PULLED = pd.Timestamp("2026-01-01", tz=TZ)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(RECORDS, seed=3)


@pytest.fixture(scope="module")
def world(dataset: Dataset) -> FormsWorld:
    return forms_world(dataset)


@pytest.fixture(scope="module")
def truth(dataset: Dataset, world: FormsWorld) -> Truth:
    return truth_with_forms(dataset, world)


def platform_raw(dataset: Dataset) -> pd.DataFrame:
    records = dataset.records.loc[dataset.records["epoch"] <= 0]
    pulled = PULLED + pd.to_timedelta(np.arange(len(records)), unit="us")
    return records.assign(pulled_at=pulled, payload="{}")[list(RAW_COLUMNS)]


def form_raw(world: FormsWorld, folder: Path) -> pd.DataFrame:
    """The live files read as the asset reads them, each unit in its city (truth: people's)."""
    world.write(folder)
    register = read_year_register(folder, world.year).entries
    city = dict(zip(world.people["employer"], world.people["city"], strict=False))
    frames = []
    for form in form_files(folder, world.year):
        if form.unit in world.files:
            rows = read_form(form.path.read_bytes())
            frames.append(form_records(rows, form, register=register, city=city[form.unit]))
    return pd.concat(frames, ignore_index=True)


def test_the_rules_reproduce_the_truth_with_forms(
    dataset: Dataset, world: FormsWorld, truth: Truth, tmp_path: Path
) -> None:
    raw = pd.concat([platform_raw(dataset), form_raw(world, tmp_path)], ignore_index=True)
    result = apply_rules(raw, as_of=pd.Timestamp.now(tz=TZ))
    mine = result.completion[list(truth.completion.columns)]
    pd.testing.assert_frame_equal(mine, truth.completion.reset_index(drop=True))
    pd.testing.assert_frame_equal(result.hours_bank, truth.hours_bank)
    pd.testing.assert_frame_equal(result.reconciliation, truth.reconciliation)


def test_the_truth_exercises_every_form_reason(truth: Truth) -> None:
    forms = truth.completion.loc[truth.completion["platform"].eq("forms")]
    reasons = set(forms["reason"].dropna())
    assert reasons >= {
        "pending_review",
        "unfiled_training",
        "outside_filing",
        "no_learning_file",
        "no_evidence",
        "F2",
        "R7",
        "R8",
        "R9",
    }
    assert set(forms["mode"]) == {"training", "self_study", "conversion"}


def test_the_store_on_both_engines_reaches_the_truth_after_a_replaced_file(
    database_url: str, dataset: Dataset, world: FormsWorld, truth: Truth, tmp_path: Path
) -> None:
    store = Store.from_url(database_url)
    store.migrate()
    raw = platform_raw(dataset)
    for (platform, year), batch in raw.groupby(["platform", "pull_year"]):
        store.store_batch(platform, year, batch, {"test": True})
    folder = tmp_path / "forms"
    for earlier in (True, False):  # the second unit's file is replaced by a corrected one
        world.write(folder, earlier=earlier)
        register = read_year_register(folder, world.year).entries
        load = load_year(store, folder, world.year, register=register, cities=unit_cities(store))
        assert list(load.refused) == list(world.broken)
        refresh_outputs(store)
    completion = store.read_table("completion", columns=list(truth.completion.columns))
    expected = truth.completion.sort_values("record_key").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        completion.sort_values("record_key").reset_index(drop=True), expected, check_dtype=False
    )
    bank = store.read_table("hours_bank", columns=list(truth.hours_bank.columns))
    key = ["id_number", "year"]
    pd.testing.assert_frame_equal(
        bank.sort_values(key).reset_index(drop=True),
        truth.hours_bank.sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )
    store.dispose()


def test_form_files_found_are_the_live_units_and_the_broken_one(
    world: FormsWorld, tmp_path: Path
) -> None:
    world.write(tmp_path)
    units = {f.unit for f in form_files(tmp_path, world.year)}
    assert units == set(world.files) | set(world.broken)
    assert all(isinstance(f, FormFile) for f in form_files(tmp_path, world.year))
