"""The compliance report: its figures equal SQL over the same database, it names no one, its
CSV files are spreadsheet-safe, and the CLI and the asset write it."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from pipelines.assets.answers import compliance_report, text_bar, title_eligibility_asset
from pipelines.assets.ledger import employer_types
from pipelines.cli import main
from pipelines.report import Figures, build_report, spreadsheet_safe
from pipelines.resources import Database, ProvincialOutput
from pipelines.rules.eligibility import title_eligibility, title_requirements
from pipelines.store import Store
from sandbox.generator import Truth

YEAR = 2022


def sql(database_url: str, query: str) -> pd.DataFrame:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return pd.DataFrame(conn.execute(text(query)).mappings().all())
    finally:
        engine.dispose()


@pytest.fixture
def report(store: Store, tmp_path: Path) -> tuple[Figures, Path]:
    return build_report(store, YEAR, tmp_path / "out")


def test_per_unit_people_compliance_shortfalls_and_makeup_equal_sql(
    report: tuple[Figures, Path], database_url: str
) -> None:
    found, _ = report
    expected = sql(
        database_url,
        "SELECT city, employer, COUNT(*) AS people, "
        "SUM(CASE WHEN compliant THEN 1 ELSE 0 END) AS compliant, "
        "SUM(CASE WHEN public_short > 0 THEN 1 ELSE 0 END) AS public_short_people, "
        "SUM(public_short) AS public_short_hours, "
        "SUM(professional_short) AS professional_short_hours, SUM(makeup_hours) AS makeup_hours "
        f"FROM hours_bank WHERE year = {YEAR} GROUP BY city, employer ORDER BY city, employer",
    )
    mine = found.units.sort_values(["city", "employer"]).reset_index(drop=True)
    assert mine[["city", "employer"]].to_numpy().tolist() == (
        expected[["city", "employer"]].to_numpy().tolist()
    )
    for column in ("people", "compliant", "public_short_people"):
        assert mine[column].tolist() == expected[column].astype(int).tolist(), column
    for column in ("public_short_hours", "professional_short_hours", "makeup_hours"):
        assert mine[column].tolist() == pytest.approx(expected[column].astype(float).tolist())
    assert mine["compliant_share"].tolist() == pytest.approx(
        (expected["compliant"] / expected["people"]).tolist(), abs=1e-4
    )


def test_per_platform_d4_counts_equal_sql(report: tuple[Figures, Path], database_url: str) -> None:
    found, _ = report
    expected = sql(
        database_url,
        "SELECT platform, COUNT(*) AS raw, "
        + ", ".join(
            f"SUM(CASE WHEN state = '{s}' THEN 1 ELSE 0 END) AS {s}"
            for s in ("credited", "merged", "not_credited", "quarantined")
        )
        + f" FROM completion WHERE COALESCE(credited_year, pull_year) = {YEAR} "
        "GROUP BY platform ORDER BY platform",
    )
    mine = found.platforms[list(expected.columns)]
    assert mine.astype("str").to_numpy().tolist() == expected.astype("str").to_numpy().tolist()


def test_quarantined_records_by_unit_and_reason_equal_sql(
    report: tuple[Figures, Path], database_url: str
) -> None:
    found, _ = report
    expected = sql(
        database_url,
        "SELECT city, employer, reason, COUNT(*) AS records FROM completion "
        f"WHERE state = 'quarantined' AND COALESCE(credited_year, pull_year) = {YEAR} "
        "GROUP BY city, employer, reason",
    )
    assert len(expected) > 0
    key = ["city", "employer", "reason"]
    mine = found.quarantine.fillna("").sort_values(key).reset_index(drop=True)
    want = expected.fillna("").sort_values(key).reset_index(drop=True)
    assert mine.astype("str").to_numpy().tolist() == want.astype("str").to_numpy().tolist()


def test_records_by_platform_and_month_equal_sql(
    report: tuple[Figures, Path], database_url: str
) -> None:
    found, _ = report
    month = (
        "CAST(strftime('%m', completed_at, '+8 hours') AS INTEGER)"
        if database_url.startswith("sqlite")
        else "CAST(EXTRACT(MONTH FROM completed_at AT TIME ZONE 'Asia/Shanghai') AS INTEGER)"
    )
    expected = sql(
        database_url,
        f"SELECT platform, {month} AS month, COUNT(*) AS records FROM completion "
        f"WHERE completed_at IS NOT NULL AND COALESCE(credited_year, pull_year) = {YEAR} "
        f"GROUP BY platform, {month} ORDER BY platform, month",
    )
    assert found.months.astype("int64", errors="ignore").to_numpy().tolist() == (
        expected.to_numpy().tolist()
    )


def test_the_hours_distribution_counts_every_person_once(
    report: tuple[Figures, Path], database_url: str
) -> None:
    found, _ = report
    people = sql(database_url, f"SELECT COUNT(*) AS n FROM hours_bank WHERE year = {YEAR}")
    assert found.hours["people"].sum() == people["n"].iloc[0]
    met = sql(
        database_url,
        f"SELECT COUNT(*) AS n FROM hours_bank WHERE year = {YEAR} AND total_hours >= 90",
    )
    assert found.hours.loc[found.hours["from_hours"] >= 90, "people"].sum() == met["n"].iloc[0]


def test_no_id_number_appears_in_the_page_or_the_csv_files(
    report: tuple[Figures, Path], truth: Truth
) -> None:
    _, page = report
    written = "".join(p.read_text(encoding="utf-8") for p in page.parent.iterdir())
    ids = set(truth.hours_bank["id_number"])
    assert not [i for i in ids if i in written]


def test_the_page_loads_nothing_from_the_network(report: tuple[Figures, Path]) -> None:
    _, page = report
    content = page.read_text(encoding="utf-8")
    assert "http://" not in content and "https://" not in content
    assert "<script src" not in content and "<link" not in content


def test_csv_cells_that_a_spreadsheet_would_evaluate_are_defused() -> None:
    frame = pd.DataFrame(
        {"employer": ["=HYPERLINK(1)", "+1", "泰安市第一中学"], "people": [1, 2, 3]}
    )
    safe = spreadsheet_safe(frame)
    assert safe["employer"].tolist() == ["'=HYPERLINK(1)", "'+1", "泰安市第一中学"]
    assert safe["people"].tolist() == [1, 2, 3]


def test_cli_report_writes_the_year_under_the_output_folder(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("XUESHI_OUTPUT_DIR", str(tmp_path / "out"))
    assert main(["report", "--year", str(YEAR)]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "out" / "reports" / str(YEAR)
    assert str(folder / "index.html") in out
    assert "compliant (R1)" in out
    assert {p.name for p in folder.iterdir()} >= {"index.html", "units.csv", "platforms.csv"}


def test_the_assets_show_headline_figures_and_a_chart_as_metadata(
    store: Store, database_url: str, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    result = dg.materialize(
        [compliance_report, title_eligibility_asset],
        resources={
            "database": Database(url=database_url),
            "output": ProvincialOutput(output_dir=str(tmp_path / "out")),
        },
        instance=instance,
    )
    report = result.asset_materializations_for_node("compliance_report")[0].metadata
    assert report["year"].value == YEAR
    assert report["people"].value > 0
    assert re.search(r"\| taian \| \d+ \| [█░]{20} \d+% \|", report["compliance_by_city"].value)
    assert (tmp_path / "out" / "reports" / str(YEAR) / "index.html").exists()
    titles = result.asset_materializations_for_node("title_eligibility")[0].metadata
    assert titles["dagster/row_count"].value == (
        titles["eligible"].value
        + titles["not_eligible"].value
        + titles["unknown_employer_type"].value
    )


def test_title_eligibility_read_a_shard_at_a_time_counts_as_the_whole_bank(
    store: Store,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    instance: dg.DagsterInstance,
) -> None:
    monkeypatch.setattr("pipelines.assets.answers.shard_count", lambda _rows: 7)
    monkeypatch.setattr(Store, "verdicts_as_of", lambda _self: None)  # judge every person
    whole = title_eligibility(title_requirements(store.read_table("hours_bank"), employer_types()))

    result = dg.materialize(
        [title_eligibility_asset],
        resources={"database": Database(url=database_url)},
        instance=instance,
    )

    titles = result.asset_materializations_for_node("title_eligibility")[0].metadata
    assert titles["dagster/row_count"].value == len(whole)
    assert titles["eligible"].value == int(whole["eligible"].eq(True).sum())
    assert titles["unknown_employer_type"].value == int(whole["eligible"].isna().sum())


def test_a_text_bar_fills_in_proportion_to_the_share() -> None:
    assert text_bar(0.5, width=10) == "█████░░░░░ 50%"
