"""`xueshi explain`: one person's years and records from the store, equal to the ground truth."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from pipelines.answers import UnknownPerson, normalized_id, person_answer
from pipelines.cli import main
from pipelines.store import Store
from sandbox.generator import Truth

OUTCOME = ["state", "reason", "merged_into", "hours_credited", "hours_trimmed", "credited_year"]


def fifteen_digit_form(id_number: str) -> str:
    """The old 15-digit form of an 18-digit ID born in the 1900s: no `19`, no check character."""
    return id_number[:6] + id_number[8:17]


def people(truth: Truth) -> list[str]:
    return sorted(truth.completion["id_number"].dropna().unique())


def scenario_people(truth: Truth) -> list[str]:
    """People with a record some rule acted on (the generator's scenarios), or a C2 conflict."""
    ledger = truth.completion
    acted_on = ledger.loc[ledger["reason"].notna(), "id_number"].dropna()
    return sorted({*acted_on, *truth.name_conflicts["id_number"]})


def test_explain_gives_the_scenario_people_exactly_the_truths_per_record_outcomes(
    store: Store, truth: Truth
) -> None:
    chosen = scenario_people(truth)
    expected = truth.completion.loc[truth.completion["id_number"].isin(chosen)]
    shown = []
    for id_number in chosen:
        answer = person_answer(store, id_number).as_dict()
        shown += [
            record | {"record_key": record["record_key"], "year": year["year"]}
            for year in answer["years"]
            for record in year["records"]
        ]
    mine = pd.DataFrame(shown).set_index("record_key").sort_index()
    want = expected.set_index("record_key").sort_index()
    assert mine.index.tolist() == want.index.tolist()
    for column in ("state", "reason", "merged_into"):
        assert mine[column].fillna("").tolist() == want[column].fillna("").tolist(), column
    for column in ("hours_credited", "hours_trimmed"):
        assert mine[column].tolist() == pytest.approx(want[column].tolist()), column
    credited = want["credited_year"].notna()
    assert (mine.loc[credited, "year"] == want.loc[credited, "credited_year"]).all()


def test_completion_times_are_shown_in_shanghai_time(store: Store, truth: Truth) -> None:
    midnight = truth.completion.loc[
        truth.completion["id_number"].notna()
        & truth.completion["completed_at"].dt.hour.eq(0)
        & truth.completion["completed_at"].dt.minute.eq(0)
    ].iloc[0]
    answer = person_answer(store, midnight["id_number"]).as_dict()
    shown = next(
        r["completed_at"]
        for y in answer["years"]
        for r in y["records"]
        if r["record_key"] == midnight["record_key"]
    )
    assert shown == midnight["completed_at"].isoformat()
    assert shown.endswith("T00:00:00+08:00")


def test_every_year_shows_the_hours_bank_row_of_the_truth(store: Store, truth: Truth) -> None:
    bank = truth.hours_bank.set_index(["id_number", "year"])
    for id_number in people(truth)[:10]:
        for year in person_answer(store, id_number).as_dict()["years"]:
            if year["hours"] is None:
                assert (id_number, year["year"]) not in bank.index
                continue
            row = bank.loc[(id_number, year["year"])]
            assert year["hours"]["public_hours"] == pytest.approx(row["public_hours"])
            assert year["hours"]["professional_hours"] == pytest.approx(row["professional_hours"])
            assert year["hours"]["compliant"] == bool(row["compliant"])
            assert year["hours"]["binding"] == bool(row["binding"])


def test_a_name_conflict_lists_every_name_of_the_id(store: Store, truth: Truth) -> None:
    conflict = truth.name_conflicts.iloc[0]
    answer = person_answer(store, conflict["id_number"]).as_dict()
    assert answer["name_conflict"] == conflict["names"].split("|")


def test_a_merged_record_names_the_record_it_was_merged_into(store: Store, truth: Truth) -> None:
    merged = truth.completion.loc[truth.completion["reason"].eq("D2")].iloc[0]
    answer = person_answer(store, merged["id_number"]).as_dict()
    record = next(
        r for y in answer["years"] for r in y["records"] if r["record_key"] == merged["record_key"]
    )
    assert f"its hours count once, on {merged['merged_into']} (" in record["outcome"]
    assert "same certificate number (D2)" in record["outcome"]


def test_a_trimmed_record_says_by_how_much_on_which_day(store: Store, truth: Truth) -> None:
    trimmed = truth.completion.loc[truth.completion["reason"].eq("R7")].iloc[0]
    answer = person_answer(store, trimmed["id_number"]).as_dict()
    record = next(
        r for y in answer["years"] for r in y["records"] if r["record_key"] == trimmed["record_key"]
    )
    day = f"{trimmed['completed_at']:%Y-%m-%d}"
    assert record["outcome"].endswith(f"{trimmed['hours_trimmed']:g} hours trimmed on {day}.")


def test_the_year_option_keeps_only_that_year(store: Store, truth: Truth) -> None:
    id_number = truth.hours_bank["id_number"].value_counts().index[0]
    answer = person_answer(store, id_number, year=2021).as_dict()
    assert [y["year"] for y in answer["years"]] == [2021]


def test_a_15_digit_id_with_a_lower_case_x_finds_the_18_digit_person() -> None:
    assert normalized_id(" 370602800101123 ") == "370602198001011234"
    assert normalized_id("37060219800101008x") == "37060219800101008X"


def test_an_invalid_id_is_refused_by_c1() -> None:
    with pytest.raises(UnknownPerson, match="invalid_id_number"):
        normalized_id("370602198001011230")


def test_cli_explain_json_takes_the_15_digit_form(
    store: Store, truth: Truth, capsys: pytest.CaptureFixture[str]
) -> None:
    id_number = next(i for i in people(truth) if i.startswith("37") and i[6:8] == "19")
    assert main(["explain", fifteen_digit_form(id_number), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["id_number"] == id_number
    assert answer["years"]


def test_cli_explain_text_shows_each_year_against_r1_and_each_record(
    store: Store, truth: Truth, capsys: pytest.CaptureFixture[str]
) -> None:
    id_number = truth.hours_bank["id_number"].value_counts().index[0]
    assert main(["explain", id_number]) == 0
    out = capsys.readouterr().out
    assert out.startswith(id_number)
    years = truth.hours_bank.loc[truth.hours_bank["id_number"].eq(id_number), "year"]
    for year in years:
        assert f"\n{year}: " in out
    assert "public " in out and "/30" in out and "/60" in out and "/90" in out
    records = truth.completion["id_number"].eq(id_number).sum()
    assert out.count("《") == records


def test_cli_explain_logs_nothing_and_refuses_an_unknown_person_without_echoing_it(
    store: Store, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert main(["explain", "370602198001011234"]) == 1
    captured = capsys.readouterr()
    assert "no record of this ID number" in captured.err
    assert "370602198001011234" not in captured.err + captured.out
    assert "370602198001011234" not in caplog.text
