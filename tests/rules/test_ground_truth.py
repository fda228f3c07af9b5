"""The rules reproduce the generator's ground truth (sandbox/generator) exactly, per epoch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.rules import RulesResult, apply_rules
from sandbox.generator import Dataset, Truth, generate
from schemas.raw import RAW_COLUMNS, TZ

RECORDS = 10_000
FIRST_PULL = pd.Timestamp("2026-01-01", tz=TZ)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(RECORDS, seed=0)


def raw_at(dataset: Dataset, epoch: int) -> pd.DataFrame:
    """Every version pulled up to `epoch`; later rows (later versions) were pulled later."""
    records = dataset.records.loc[dataset.records["epoch"] <= epoch]
    pulled = FIRST_PULL + pd.to_timedelta(records["epoch"].to_numpy(), unit="D")
    pulled += pd.to_timedelta(np.arange(len(records)), unit="us")
    return records.assign(pulled_at=pulled, payload="{}")[list(RAW_COLUMNS)]


@pytest.fixture(scope="module", params=[0, 1], ids=["epoch0", "epoch1"])
def outcome(request: pytest.FixtureRequest, dataset: Dataset) -> tuple[RulesResult, Truth]:
    epoch = request.param
    result = apply_rules(raw_at(dataset, epoch), as_of=pd.Timestamp.now(tz=TZ))
    return result, dataset.truth(epoch=epoch)


def test_ledger_equals_the_truth(outcome: tuple[RulesResult, Truth]) -> None:
    result, truth = outcome
    mine = result.completion[list(truth.completion.columns)]
    pd.testing.assert_frame_equal(mine, truth.completion.reset_index(drop=True))


def test_hours_bank_equals_the_truth(outcome: tuple[RulesResult, Truth]) -> None:
    result, truth = outcome
    pd.testing.assert_frame_equal(result.hours_bank, truth.hours_bank)


def test_reconciliation_equals_the_truth(outcome: tuple[RulesResult, Truth]) -> None:
    result, truth = outcome
    pd.testing.assert_frame_equal(result.reconciliation, truth.reconciliation)


def test_name_conflicts_equal_the_truth(outcome: tuple[RulesResult, Truth]) -> None:
    result, truth = outcome
    pd.testing.assert_frame_equal(result.name_conflicts, truth.name_conflicts)


def test_the_truth_exercises_every_state_and_reason(outcome: tuple[RulesResult, Truth]) -> None:
    result, _ = outcome
    assert set(result.completion["state"]) == {"credited", "merged", "not_credited", "quarantined"}
    assert {"R6", "R7", "D2", "D3", "id_number_corrupted", "invalid_makeup"} <= set(
        result.completion["reason"].dropna()
    )
