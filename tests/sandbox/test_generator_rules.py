"""The generator's ground truth, rule by rule: each scenario found in a small dataset and its
outcome checked against what RULES.md and docs/decisions.md say, written out by hand."""

from __future__ import annotations

import unicodedata

import pandas as pd
import pytest

from sandbox.generator import Dataset, Truth, generate
from tests.ids import with_check

LATE_2022 = pd.Timestamp("2022-11-26", tz="Asia/Shanghai")  # the last 35 days of 2022 start here


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(2_000, seed=11)


@pytest.fixture(scope="module")
def truth(dataset: Dataset) -> Truth:
    return dataset.truth()


@pytest.fixture(scope="module")
def ledger(dataset: Dataset, truth: Truth) -> pd.DataFrame:
    """The epoch-0 ledger joined with what the platforms showed for each record."""
    shown = dataset.records[dataset.records["epoch"] == 0].drop_duplicates(
        "record_key", keep="last"
    )
    wire = shown[["record_key", "raw_id", "category_label", "wire_hours", "makeup_year"]]
    return truth.completion.merge(wire, on="record_key", validate="one_to_one")


def by_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("record_key")


def test_r4_unknown_labels_are_quarantined_without_a_subject(ledger: pd.DataFrame) -> None:
    unknown = ledger[ledger["reason"] == "unknown_category"]
    assert set(unknown["category_label"]) == {"选修课", "OTHER", "其他", "选修", "选修科目"}
    assert unknown["subject"].isna().all()
    assert unknown["credited_year"].isna().all()
    assert (unknown["hours_credited"] == 0).all()


def test_r6_failed_exam_is_kept_but_not_credited(ledger: pd.DataFrame) -> None:
    failed = ledger[(ledger["reason"] == "R6") & ledger["completed_at"].notna()]
    assert (failed["state"] == "not_credited").all()
    assert (failed["hours_credited"] == 0).all()
    assert (failed["credited_year"] == failed["completed_at"].dt.year).all()
    assert {"ta_yx", "ta_zjp", "ta_tyjrp", "ta_sdty", "yt_ytu", "yt_sdbc"} <= set(
        failed["platform"]
    )


def test_r6_unfinished_spa_record_has_no_credited_year(ledger: pd.DataFrame) -> None:
    unfinished = ledger[ledger["completed_at"].isna()]
    assert set(unfinished["platform"]) == {"yt_naas", "yt_samet"}
    assert (unfinished["state"] == "not_credited").all()
    assert (unfinished["reason"] == "R6").all()
    assert unfinished["credited_year"].isna().all()


def test_r7_trims_twelve_hours_on_one_day_to_eight(ledger: pd.DataFrame) -> None:
    credited = ledger[ledger["state"] == "credited"].sort_values("completed_at")
    day = credited.groupby(["id_number", credited["completed_at"].dt.date])
    sizes = day["hours_reported"].transform("size")
    totals = day["hours_reported"].transform("sum")
    platforms = day["platform"].transform("nunique")
    five_four_three = credited[(sizes == 3) & (totals == 12) & (platforms == 1)]
    assert list(five_four_three["hours_reported"].head(3)) == [5.0, 4.0, 3.0]
    assert list(five_four_three["hours_credited"].head(3)) == [5.0, 3.0, 0.0]
    assert list(five_four_three["hours_trimmed"].head(3)) == [0.0, 1.0, 3.0]
    assert list(five_four_three["reason"].head(3).fillna("")) == ["", "R7", "R7"]


def test_r7_caps_one_day_across_platforms_in_time_order(ledger: pd.DataFrame) -> None:
    credited = ledger[ledger["state"] == "credited"].sort_values(["completed_at", "platform"])
    day = credited.groupby(["id_number", credited["completed_at"].dt.date])
    mixed = credited[
        (day["platform"].transform("nunique") == 3) & (day["hours_trimmed"].transform("sum") > 0)
    ]
    yantai = mixed[mixed["platform"].str.startswith("yt_")].head(3)
    assert list(yantai["platform"]) == ["yt_sdbc", "yt_ytu", "yt_ldu"]  # midnight before 09:00
    assert list(yantai["hours_credited"]) == [3.0, 4.0, 1.0]
    assert list(yantai["hours_trimmed"]) == [0.0, 0.0, 5.0]
    taian = mixed[mixed["platform"].str.startswith("ta_")].head(3)
    assert list(taian["platform"]) == ["ta_zjp", "ta_tyjrp", "ta_sdty"]
    assert list(taian["hours_credited"]) == [1.5, 6.0, 0.5]


def test_r11_makeup_done_in_2022_credits_its_year_on_taian_platforms(
    ledger: pd.DataFrame,
) -> None:
    makeup = ledger[ledger["makeup"] & (ledger["state"] == "credited")]
    assert set(makeup["credited_year"]) == {2018, 2019, 2020, 2021}
    assert (makeup["completed_at"].dt.year == 2022).all()
    assert (makeup["credited_year"] == makeup["makeup_year"]).all()
    assert set(makeup["platform"]) == {"ta_yx", "ta_zjp", "ta_tyjrp", "ta_sdty"}


def test_r11_makeup_for_2016_or_2022_is_invalid(ledger: pd.DataFrame) -> None:
    invalid = ledger[ledger["reason"] == "invalid_makeup"]
    assert {2016, 2022} <= set(invalid["makeup_year"].dropna())
    assert invalid["credited_year"].isna().all()


def test_r11_makeup_mark_on_a_yantai_platform_is_invalid(ledger: pd.DataFrame) -> None:
    yantai = ledger[ledger["makeup"] & (ledger["city"] == "yantai")]
    assert set(yantai["platform"]) == {"yt_ldu", "yt_sdbc"}
    assert (yantai["reason"] == "invalid_makeup").all()


def test_r11_tyjrp_makeup_without_a_year_is_invalid(ledger: pd.DataFrame) -> None:
    missing = ledger[ledger["makeup"] & ledger["makeup_year"].isna()]
    assert list(missing["platform"].unique()) == ["ta_tyjrp"]
    assert (missing["reason"] == "invalid_makeup").all()


def test_r11_invalid_makeup_wins_over_invalid_hours(ledger: pd.DataFrame) -> None:
    both = ledger[ledger["makeup"] & (ledger["hours_reported"] == 0)]
    assert list(both["reason"]) == ["invalid_makeup"]


def test_r12_dates_before_2017_or_in_the_future_are_quarantined(ledger: pd.DataFrame) -> None:
    out = ledger[ledger["reason"] == "out_of_range_date"]
    assert sorted(out["completed_at"].dt.year) == [2016, 2202]
    assert set(out["platform"]) == {"ta_yx", "ta_sdty"}


def test_r13_invalid_hours_are_quarantined(ledger: pd.DataFrame) -> None:
    invalid = ledger[ledger["reason"] == "invalid_hours"]
    assert set(invalid["wire_hours"]) == {"0.0", "-2", "1.25", "0", "150", "abc学时"}
    assert invalid["hours_reported"].isna().sum() == 1


def test_r13_one_and_a_half_hours_are_credited(ledger: pd.DataFrame) -> None:
    zjp = ledger[(ledger["platform"] == "ta_zjp") & (ledger["wire_hours"] == "1.5")]
    assert (zjp["state"] == "credited").any()
    assert (zjp.loc[zjp["state"] == "credited", "hours_credited"] == 1.5).all()


def test_c1_370921_id_born_in_1975_is_valid(dataset: Dataset, ledger: pd.DataFrame) -> None:
    people = dataset.people
    ningyang = people.loc[people["id_number"].str.startswith("3709211975"), "id_number"]
    records = ledger[ledger["id_number"].isin(ningyang)]
    assert len(records) >= 5
    assert (records["state"] == "credited").all()


def test_c1_invalid_ids_are_quarantined_with_a_null_id(ledger: pd.DataFrame) -> None:
    invalid = ledger[ledger["reason"] == "invalid_id_number"]
    assert invalid["id_number"].isna().all()
    raw = invalid["raw_id"]
    assert raw.str.startswith("99").any()  # province prefix
    assert raw.str[10:14].eq("0230").any()  # 30 February
    assert len(invalid) == 4  # and a wrong check character on two platforms


def test_c1_numeric_tyjrp_cell_is_corrupted(dataset: Dataset, ledger: pd.DataFrame) -> None:
    numeric = dataset.records[dataset.records["wire_id_numeric"]]
    assert set(numeric["platform"]) == {"ta_tyjrp"}
    assert numeric["raw_id"].str.fullmatch(r"3\.7\d*e\+17").all()
    outcome = by_key(ledger).loc[numeric["record_key"]]
    assert (outcome["reason"] == "id_number_corrupted").all()
    assert outcome["id_number"].isna().all()


def plain_clean(raw: str) -> str:
    """C1's cleaning written out plainly, independent of the pipeline."""
    text = unicodedata.normalize("NFKC", raw).strip().replace("\u200b", "").lstrip("'")
    if text.startswith('="') and text.endswith('"'):
        text = text[2:-1]
    text = text.upper()
    if len(text) == 15:
        text = with_check(text[:6] + "19" + text[6:])
    return text


def test_c1_quirky_ids_still_name_their_person(ledger: pd.DataFrame) -> None:
    kept = ledger[ledger["id_number"].notna() & (ledger["raw_id"] != ledger["id_number"])]
    shown = kept["raw_id"]
    assert shown.str.startswith("'").any() and shown.str.startswith("\t").any()
    assert shown.str.startswith('="').any() and shown.str.endswith("x").any()
    assert (shown.str.len() == 15).any() and shown.str.contains("０").any()
    assert shown.str.startswith(" ").any() and shown.str.startswith("\u200b").any()
    assert [plain_clean(raw) for raw in shown] == list(kept["id_number"])


def test_c2_three_spellings_of_a_middle_dot_name_are_one_person(
    dataset: Dataset, truth: Truth
) -> None:
    names = dataset.records[["raw_id", "name"]].dropna()
    dotted = names[names["name"].str.contains("[·・•‧⋅∙.．]", regex=True)]
    spellings = dotted.groupby("raw_id")["name"].nunique()
    person = spellings.idxmax()
    assert spellings.max() >= 3
    cleaned = truth.completion.loc[truth.completion["id_number"] == person, "name"]
    assert len(cleaned) >= 3 and (cleaned == cleaned.iloc[0]).all()
    assert "·" in cleaned.iloc[0]
    assert person not in set(truth.name_conflicts["id_number"])


def test_c2_space_inside_a_han_name_is_removed(ledger: pd.DataFrame, dataset: Dataset) -> None:
    spaced = dataset.records[dataset.records["name"].str.contains(" ", regex=False, na=False)]
    outcome = by_key(ledger).loc[spaced["record_key"]]
    assert (outcome["name"] == spaced["name"].str.replace(" ", "").to_numpy()).all()


def test_c2_traditional_surname_stays_as_given(dataset: Dataset) -> None:
    assert dataset.people["name"].str.startswith("於").any()


def test_c2_rare_names_outside_gbk_appear_on_other_platforms(dataset: Dataset) -> None:
    records = dataset.records
    rare = records["name"].str.contains("[𠮷䶮𪚥]", regex=True, na=False)
    assert rare.any()
    assert not (records.loc[rare, "platform"] == "ta_zjp").any()


def test_c4_every_ta_zjp_text_is_gbk_encodable(dataset: Dataset) -> None:
    zjp = dataset.records[dataset.records["platform"] == "ta_zjp"]
    texts = pd.concat([zjp[c].dropna() for c in ("raw_id", "name", "employer", "course_title")])
    assert "".join(texts).encode("gbk")
    assert zjp["name"].str.contains("[堃喆赟犇淼昇珺玥翀璟]", regex=True).any()


def test_c2_one_id_with_two_names_is_a_reported_conflict(truth: Truth) -> None:
    conflicts = truth.name_conflicts
    assert len(conflicts) == 1
    names = conflicts["names"].iloc[0].split("|")
    assert names == sorted(names) and len(names) == 2
    bank = truth.hours_bank[truth.hours_bank["id_number"] == conflicts["id_number"].iloc[0]]
    assert len(bank) == 1  # one person, not split


def test_c3_decorated_titles_share_the_plain_key(ledger: pd.DataFrame) -> None:
    tagged = ledger[ledger["course_title"].str.match(r"^【\d{4}】")]
    assert (tagged["course_key"] == tagged["course_title"].str[6:].str.casefold()).all()
    spaced = ledger[ledger["course_title"].str.contains("\u3000", regex=False)]
    assert not spaced["course_key"].str.contains(r"\s", regex=True).any()


def test_d1_newest_version_wins(dataset: Dataset, ledger: pd.DataFrame) -> None:
    versions = dataset.records[dataset.records["epoch"] == 0]
    repeated = versions[versions["record_key"].duplicated(keep=False)]
    newest = repeated.sort_values("updated_at").drop_duplicates("record_key", keep="last")
    outcome = by_key(ledger).loc[newest["record_key"]]
    assert (outcome["state"] == "credited").all()
    assert newest["passed"].all()
    assert len(newest) == 3


def test_d1_epoch_one_revocation_and_vanished_row_leave_every_output(dataset: Dataset) -> None:
    before = set(dataset.truth(0).completion["record_key"])
    after = set(dataset.truth(1).completion["record_key"])
    withdrawn = dataset.records.loc[dataset.records["withdrawn"], ["platform", "record_key"]]
    assert set(withdrawn["platform"]) == {"ta_sdty", "yt_ytec"}
    assert set(withdrawn["record_key"]) <= before - after


def test_d1_epoch_one_corrected_exam_becomes_credited(dataset: Dataset) -> None:
    versions = dataset.records
    corrected = versions[(versions["epoch"] == 1) & (versions["platform"] == "ta_yx")]
    keys = corrected["record_key"]
    before = by_key(dataset.truth(0).completion).loc[keys]
    after = by_key(dataset.truth(1).completion).loc[keys]
    assert list(before["state"]) == ["not_credited"]
    assert list(after["state"]) == ["credited"]
    assert (corrected["updated_at"].dt.year == 2022).all()


def test_d1_late_zjp_record_appears_at_epoch_one_within_the_look_back(dataset: Dataset) -> None:
    late = dataset.records[
        (dataset.records["epoch"] == 1) & (dataset.records["platform"] == "ta_zjp")
    ]
    assert len(late) == 1
    assert late["completed_at"].iloc[0] >= LATE_2022
    assert late["record_key"].iloc[0] not in set(dataset.truth(0).completion["record_key"])
    assert late["record_key"].iloc[0] in set(dataset.truth(1).completion["record_key"])


def test_d2_same_certificate_keeps_the_earliest(ledger: pd.DataFrame) -> None:
    merged = ledger[ledger["reason"] == "D2"]
    kept = by_key(ledger).loc[merged["merged_into"]]
    assert (kept["certificate_no"].to_numpy() == merged["certificate_no"].to_numpy()).all()
    assert (kept["completed_at"].to_numpy() <= merged["completed_at"].to_numpy()).all()
    assert (kept["state"] == "credited").all()
    assert (merged["hours_credited"] == 0).all()
    assert len(merged) == 3


def test_d2_tie_on_completion_keeps_the_lower_platform_code(ledger: pd.DataFrame) -> None:
    merged = ledger[ledger["reason"] == "D2"]
    kept = by_key(ledger).loc[merged["merged_into"]]
    tie = kept["completed_at"].to_numpy() == merged["completed_at"].to_numpy()
    assert list(kept.loc[tie, "platform"]) == ["yt_sdbc"]
    assert list(merged.loc[tie, "platform"]) == ["yt_ytu"]


def test_d3_same_course_in_one_year_keeps_the_earliest(ledger: pd.DataFrame) -> None:
    merged = ledger[ledger["reason"] == "D3"]
    kept = by_key(ledger).loc[merged["merged_into"]]
    for column in ("course_key", "subject", "credited_year", "id_number"):
        assert (kept[column].to_numpy() == merged[column].to_numpy()).all()
    assert (kept["course_title"].to_numpy() != merged["course_title"].to_numpy()).all()
    assert (kept["completed_at"].to_numpy() < merged["completed_at"].to_numpy()).all()
    assert len(merged) == 2


def test_d3_same_title_in_another_year_or_subject_is_credited_twice(
    ledger: pd.DataFrame,
) -> None:
    same = ledger[ledger["course_key"] == "人工智能通识"]
    assert list(same["state"]) == ["credited"] * 3


def test_d3_failed_attempt_does_not_absorb_the_later_pass(ledger: pd.DataFrame) -> None:
    retake = ledger[ledger["course_key"] == "区块链技术应用"].sort_values("completed_at")
    assert list(retake["state"]) == ["not_credited", "credited"]


def test_r1_public_and_professional_minimums_make_a_compliant_year(truth: Truth) -> None:
    bank = truth.hours_bank
    full = bank[(bank["public_hours"] == 32) & (bank["professional_hours"] == 64)]
    assert len(full) == 1
    row = full.iloc[0]
    assert row["compliant"] and row["total_hours"] == 96
    assert row["public_short"] == 0 and row["professional_short"] == 0


def test_r1_surplus_public_hours_do_not_make_up_professional(truth: Truth) -> None:
    bank = truth.hours_bank
    lopsided = bank[(bank["public_hours"] == 50) & (bank["professional_hours"] == 40)]
    assert len(lopsided) == 1
    row = lopsided.iloc[0]
    assert not row["compliant"] and row["total_hours"] == 90
    assert row["public_short"] == 0 and row["professional_short"] == 20


def test_r1_makeup_hours_count_in_the_year_made_up(truth: Truth) -> None:
    bank = truth.hours_bank
    made_up = bank[bank["makeup_hours"] > 0]
    assert set(made_up["year"]) == {2018, 2019, 2020, 2021}


def test_r2_taian_enterprise_shortfall_in_2022_is_not_binding(
    dataset: Dataset, truth: Truth
) -> None:
    bank = truth.hours_bank.merge(dataset.people[["id_number", "employer_type"]], on="id_number")
    relaxed = bank[~bank["binding"]]
    assert (relaxed["year"] == 2022).all()
    assert (relaxed["city"] == "taian").all()
    assert (relaxed["employer_type"] == "enterprise").all()
    assert relaxed["employer"].str.endswith("公司").all()
    same_people = bank[bank["id_number"].isin(relaxed["id_number"]) & (bank["year"] == 2021)]
    assert same_people["binding"].all() and len(same_people) > 0


def test_r2_institutions_and_yantai_stay_binding_in_2022(dataset: Dataset, truth: Truth) -> None:
    bank = truth.hours_bank.merge(dataset.people[["id_number", "employer_type"]], on="id_number")
    year = bank[bank["year"] == 2022]
    institutions = year[(year["city"] == "taian") & (year["employer_type"] == "institution")]
    yantai_firms = year[(year["city"] == "yantai") & (year["employer_type"] == "enterprise")]
    assert len(institutions) > 0 and institutions["binding"].all()
    assert len(yantai_firms) > 0 and yantai_firms["binding"].all()
