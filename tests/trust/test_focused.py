"""Rules that only the big ground-truth equality guarded, each pinned by a test of its own."""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from connectors.core import ContractError
from pipelines import checks
from pipelines.cli import main
from pipelines.metadata import masked_preview
from pipelines.rules.clean import clean_names
from pipelines.store import Store
from tests.rules.factory import PERSON, ledger, record
from tests.trust.conftest import Environment

FULL_ID = re.compile(r"(?<!\d)(\d{17}[\dXx]|\d{15})(?!\d)")


def outcome(**overrides: object) -> tuple[str, str | None]:
    row = ledger(record(**overrides)).iloc[0]
    return row["state"], None if pd.isna(row["reason"]) else row["reason"]


# --- R11 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("year", [2018, 2021])
def test_r11_accepts_makeup_for_the_first_and_last_year_of_the_window(year: int) -> None:
    row = ledger(record(makeup=True, makeup_year=year)).iloc[0]
    assert (row["state"], row["credited_year"]) == ("credited", year)


@pytest.mark.parametrize("year", [2017, 2022])
def test_r11_quarantines_makeup_just_outside_the_window(year: int) -> None:
    assert outcome(makeup=True, makeup_year=year) == ("quarantined", "invalid_makeup")


# --- C2 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dot", ["\u30fb", "\u2022", "\u2027", "\u22c5", "\u2219", "\uff65", "\u00b7", ".", "\uff0e"]
)
def test_c2_maps_every_middle_dot_variant_to_u00b7(dot: str) -> None:
    assert clean_names(pd.Series([f"买买提{dot}艾力"])).tolist() == ["买买提·艾力"]


# --- D4 -------------------------------------------------------------------------------------


def counts(raw: int, credited: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "platform": ["ta_yx"],
            "year": [2022],
            "raw": [raw],
            "credited": [credited],
            "merged": [0],
            "not_credited": [0],
            "quarantined": [0],
        }
    )


def test_d4_fails_when_a_year_does_not_balance() -> None:
    result = checks.balance(counts(3, 2), pd.Series({"ta_yx": 3}))
    assert not result.passed


def test_d4_fails_when_the_ledger_misses_a_stored_record() -> None:
    result = checks.balance(counts(3, 3), pd.Series({"ta_yx": 4}))
    assert not result.passed


def test_d4_passes_a_balanced_ledger_holding_every_stored_record() -> None:
    assert checks.balance(counts(3, 3), pd.Series({"ta_yx": 3})).passed


def test_a_failing_d4_check_fails_the_run(
    environment: Environment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stored = Store.live_raw_counts
    monkeypatch.setattr(Store, "live_raw_counts", lambda self: stored(self) + 1)
    assert main(["sync", "--year", "2022", "--platform", "yt_ytec"]) == 1
    assert "check reconciliation_balances on reconciliation did not pass" in capsys.readouterr().err


# --- C6 -------------------------------------------------------------------------------------


def test_asset_previews_mask_id_numbers() -> None:
    preview = masked_preview(
        pd.DataFrame({"id_number": [PERSON], "name": ["张三"]}), ("id_number",)
    )
    assert PERSON not in preview
    assert f"{PERSON[:6]}********{PERSON[-4:]}" in preview


@pytest.mark.parametrize("id_number", [PERSON, "370902880101123"])
def test_error_snippets_and_problems_mask_id_numbers(id_number: str) -> None:
    body = f"姓名,身份证号\n张三,{id_number}\n".encode()
    error = ContractError("ta_zjp", "http://x/export", f"got ['{id_number}']", body)
    assert not FULL_ID.search(str(error))
    assert f"{id_number[:6]}********{id_number[-4:]}" in str(error)


# --- the CLI --------------------------------------------------------------------------------


def test_sync_defaults_to_the_current_year_in_beijing(
    environment: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--platform", "yt_ytec"]) == 0
    year = datetime.now(ZoneInfo("Asia/Shanghai")).year
    assert f"syncing {year} from yt_ytec" in capsys.readouterr().out


def test_sync_prints_this_runs_d4_counts_with_a_total(
    environment: Environment, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sync", "--year", "2022", "--platform", "yt_ytec", "--platform", "ta_yx"]) == 0
    out = capsys.readouterr().out
    store = Store.from_url(environment.database_url)
    reconciliation = store.read_table("reconciliation")
    store.dispose()
    run_id = re.search(r"run (\S+) succeeded", out)[1]
    mine = reconciliation[reconciliation["run_id"] == run_id]
    columns = ["raw", "credited", "merged", "not_credited", "quarantined"]
    for platform in ("yt_ytec", "ta_yx"):
        expected = mine[mine["platform"] == platform][columns].sum().tolist()
        assert summary_row(out, platform) == expected
    assert summary_row(out, "total") == mine[columns].sum().tolist()


def summary_row(out: str, name: str) -> list[int]:
    """The counts of the summary table's row `name` (progress lines name platforms too)."""
    row = re.search(rf"^{name}((?:\s+\d+){{5}})\s*$", out, re.MULTILINE)
    assert row is not None, f"no summary row for {name}"
    return [int(n) for n in row[1].split()]


def test_demo_runs_every_year_and_says_where_the_outputs_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XUESHI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("XUESHI_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.delenv("XUESHI_OUTPUT_DIR", raising=False)
    saved = dict(os.environ)  # the demo points this process at its sandbox
    try:
        assert main(["demo", "--records", "300"]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    out = capsys.readouterr().out
    assert "succeeded" in out
    assert "dagster dev" in out
    assert list((tmp_path / "data" / "provincial").rglob("*.xlsx"))
