"""No full ID number leaves a validation, nor the Data Docs built from it (RULES.md C6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.validation import (
    Validation,
    build_data_docs,
    validate_completion,
    validate_hours_bank,
    validate_raw,
)
from tests.validation.frames import ALL_IDS, ZHANG, broken, hours_bank, ledger, raw

WRONG_CHECK = ZHANG[:-1] + ("0" if ZHANG[-1] != "0" else "1")
EVERY_ID = (*ALL_IDS, WRONG_CHECK)


@pytest.fixture(scope="module")
def failing() -> list[Validation]:
    """Each suite failing on rows that carry ID numbers, an invalid one included."""
    frame = broken(raw(), "ta_yx:r1", {"platform": "xx", "raw_id": WRONG_CHECK}, "record_key")
    bad_ledger = broken(
        ledger(), "ta_yx:1", {"id_number": WRONG_CHECK, "subject": "x"}, by="record_key"
    )
    bank = hours_bank()
    bank.loc[2, "id_number"] = ZHANG  # a duplicate (id_number, year) key
    bank.loc[1, "total_hours"] = 1.0
    return [
        validate_raw(frame),
        validate_completion(bad_ledger, current_year=2026),
        validate_hours_bank(bank),
    ]


def test_each_suite_fails_on_rows_with_id_numbers(failing: list[Validation]) -> None:
    assert [v.success for v in failing] == [False, False, False]
    assert all(len(v.failing_keys) > 0 for v in failing)


def test_no_full_id_number_appears_in_any_validation(failing: list[Validation]) -> None:
    for validation in failing:
        text = "\n".join(
            [
                repr(validation),
                validation.failing_keys.to_csv(),
                json.dumps(validation.result.to_json_dict(), ensure_ascii=False),
            ]
        )
        assert not [number for number in EVERY_ID if number in text]


@pytest.fixture(scope="module")
def site(failing: list[Validation], tmp_path_factory: pytest.TempPathFactory) -> Path:
    site_dir = tmp_path_factory.mktemp("data_docs")
    assert build_data_docs(failing, site_dir) == site_dir / "index.html"
    return site_dir


def test_no_full_id_number_appears_in_data_docs(site: Path) -> None:
    pages = [p for p in site.rglob("*") if p.suffix in {".html", ".json", ".js"}]
    assert pages
    leaks = {
        str(page.relative_to(site))
        for page in pages
        for number in EVERY_ID
        if number in page.read_text(encoding="utf-8")
    }
    assert leaks == set()


def test_data_docs_index_links_each_suites_page(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    for suite in ("raw_records", "completion", "hours_bank"):
        pages = list((site / "validations" / suite).rglob(f"{suite}.html"))
        assert len(pages) == 1
        assert pages[0].relative_to(site).as_posix() in html


def test_a_duplicate_person_year_is_named_by_masked_id(failing: list[Validation]) -> None:
    keys = failing[2].failing_keys
    duplicates = keys[keys["expectation"].str.startswith("expect_compound_columns")]
    assert duplicates["id_masked"].tolist() == [f"{ZHANG[:6]}********{ZHANG[-4:]}"] * 2


def test_successive_builds_add_to_the_site(tmp_path: Path) -> None:
    build_data_docs([validate_raw(raw())], tmp_path)
    index = build_data_docs([validate_hours_bank(hours_bank())], tmp_path)
    html = index.read_text(encoding="utf-8")
    assert "validations/raw_records/" in html
    assert "validations/hours_bank/" in html


def test_a_suite_keeps_only_its_latest_results(tmp_path: Path) -> None:
    first, second = validate_raw(raw()), validate_raw(raw())
    build_data_docs([first], tmp_path, history=1)
    build_data_docs([second], tmp_path, history=1)
    pages = sorted(p.parent.name for p in (tmp_path / "validations").rglob("*.html"))
    assert pages == [second.result.meta["run_id"].run_time.strftime("%Y%m%dT%H%M%S.%fZ")]
