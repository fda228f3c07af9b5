"""The provincial workbooks: layout, cell types, contents, manifest, and safe unique file names."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from pipelines.provincial import (
    HOURS_HEADER,
    LEARNERS_HEADER,
    LEDGER_COLUMNS,
    MAX_NAME_BYTES,
    Manifest,
    file_stems,
    safe_name,
    update_provincial,
    write_provincial,
)
from tests.load.frames import at, bank, bank_row, id_number, ledger, ledger_row

MAN = id_number("37092119800101001")  # 17th digit 1: male, born 1980-01-01
WOMAN = id_number("37068219920229002")  # 17th digit 2: female, born 1992-02-29
SCHOOL = "泰安市第一中学"
FIRM = "烟台某某科技有限公司"


def sheet_rows(path: Path) -> list[tuple[object, ...]]:
    return list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))


def as_dicts(path: Path) -> list[dict[str, object]]:
    header, *rows = sheet_rows(path)
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.fixture
def written(tmp_path: Path) -> Manifest:
    completion = ledger(
        ledger_row("m1", MAN, completed_at=at("2022-05-03 10:00"), employer="旧单位"),
        ledger_row(
            "m2",
            MAN,
            subject="public",
            makeup=True,
            credited_year=2021,
            completed_at=at("2022-04-01 09:00"),
            certificate_no="0012345",
        ),
        ledger_row("m3", MAN, state="not_credited", reason="R6", hours_credited=0.0),
        ledger_row("m4", MAN, state="merged", reason="D3", merged_into="ta_yx:m1"),
        ledger_row("m5", MAN, reason="R7", hours_credited=0.0, hours_trimmed=2.0),
        ledger_row("w1", WOMAN, platform="yt_ldu", city="yantai", hours_credited=1.5),
        ledger_row("q1", None, state="quarantined", reason="invalid_id_number"),
    )
    hours_bank = bank(
        bank_row(MAN, employer=SCHOOL),
        bank_row(MAN, year=2021, employer=SCHOOL),
        bank_row(WOMAN, name="李四", employer=FIRM, city="yantai"),
    )
    return write_provincial(completion, hours_bank, tmp_path)


def file_of(manifest: Manifest, year: int, kind: str, employer: str) -> Path:
    return next(
        f.path for f in manifest.files if (f.year, f.kind, f.employer) == (year, kind, employer)
    )


def test_hours_workbook_has_the_exact_header(written: Manifest) -> None:
    assert sheet_rows(file_of(written, 2022, "hours", SCHOOL))[0] == HOURS_HEADER


def test_learners_workbook_has_the_exact_header(written: Manifest) -> None:
    assert sheet_rows(file_of(written, 2022, "learners", SCHOOL))[0] == LEARNERS_HEADER


def test_hours_list_only_credited_records_with_hours(written: Manifest) -> None:
    rows = as_dicts(file_of(written, 2022, "hours", SCHOOL))

    assert [r["来源记录"] for r in rows] == ["ta_yx:m1"]


def test_an_hours_row_carries_the_provincial_labels(written: Manifest) -> None:
    (row,) = as_dicts(file_of(written, 2022, "hours", SCHOOL))

    assert row == {
        "序号": 1,
        "姓名": "张三",
        "身份证号": MAN,
        "工作单位": SCHOOL,
        "年度": 2022,
        "科目类别": "专业科目",
        "学习方式": "培训进修类",
        "项目名称": "课程m1",
        "主办单位": "泰安市专业技术人员继续教育平台",
        "完成日期": "2022-05-03",
        "学时": 2,
        "是否补学": "否",
        "证书编号": "CERT-m1",
        "来源记录": "ta_yx:m1",
    }


def test_a_makeup_record_goes_to_its_makeup_year_marked_as_makeup(written: Manifest) -> None:
    (row,) = as_dicts(file_of(written, 2021, "hours", SCHOOL))

    assert (row["年度"], row["是否补学"], row["科目类别"]) == (2021, "是", "公需科目")


def test_the_employer_is_the_person_years_employer_from_the_bank(written: Manifest) -> None:
    (row,) = as_dicts(file_of(written, 2022, "hours", SCHOOL))

    assert row["工作单位"] == SCHOOL
    assert not any(f.employer == "旧单位" for f in written.files)


def test_id_and_certificate_cells_are_text(written: Manifest) -> None:
    sheet = openpyxl.load_workbook(file_of(written, 2021, "hours", SCHOOL)).active
    id_cell = sheet.cell(2, HOURS_HEADER.index("身份证号") + 1)
    certificate = sheet.cell(2, HOURS_HEADER.index("证书编号") + 1)

    assert (id_cell.data_type, id_cell.number_format, id_cell.value) == ("s", "@", MAN)
    assert (certificate.data_type, certificate.value) == ("s", "0012345")


@pytest.mark.parametrize(
    ("person", "employer", "gender", "birth"),
    [(MAN, SCHOOL, "男", "1980-01-01"), (WOMAN, FIRM, "女", "1992-02-29")],
)
def test_learners_gender_and_birth_date_come_from_the_id_number(
    written: Manifest, person: str, employer: str, gender: str, birth: str
) -> None:
    (row,) = as_dicts(file_of(written, 2022, "learners", employer))

    assert (row["证件号码"], row["证件类型"], row["性别"], row["出生日期"]) == (
        person,
        "居民身份证",
        gender,
        birth,
    )


def test_hours_and_learner_files_list_the_same_people(written: Manifest) -> None:
    for year, employer in [(2022, SCHOOL), (2022, FIRM), (2021, SCHOOL)]:
        hours = {r["身份证号"] for r in as_dicts(file_of(written, year, "hours", employer))}
        learners = {r["证件号码"] for r in as_dicts(file_of(written, year, "learners", employer))}
        assert hours == learners


def test_manifest_counts_and_sha256_match_the_files(written: Manifest) -> None:
    folder = written.manifests[2022].parent
    document = json.loads(written.manifests[2022].read_text(encoding="utf-8"))

    for entry in document["files"]:
        path = folder / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        assert len(sheet_rows(path)) - 1 == entry["rows"]
    assert document["rows"] == {"hours": 2, "learners": 2}
    assert {e["path"] for e in document["files"]} == {
        p.relative_to(folder).as_posix() for p in folder.glob("*/*.xlsx")
    }


def test_the_manifest_summarises_files_rows_and_years(written: Manifest) -> None:
    assert (written.file_count, written.row_count, written.years) == (6, 3, [2021, 2022])
    assert (written.rows("learners", 2022), written.rows("hours", 2021)) == (2, 1)


def test_rerun_with_the_same_ledger_writes_identical_files(tmp_path: Path) -> None:
    completion, hours_bank = ledger(ledger_row("1", MAN)), bank(bank_row(MAN))
    first = write_provincial(completion, hours_bank, tmp_path)
    (tmp_path / "provincial" / "2022" / "manifest.json").unlink()  # forces a rewrite

    second = write_provincial(completion, hours_bank, tmp_path)

    assert [f.sha256 for f in first.files] == [f.sha256 for f in second.files]


def stamps(root: Path) -> dict[Path, tuple[int, int]]:
    """Inode and modification time of every workbook: a rewrite changes both."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*.xlsx")}


def folder_contents(root: Path) -> dict[str, bytes]:
    """Every file under `root` by relative path, hidden ones included."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def two_employers_two_years() -> tuple[list[dict[str, object]], pd.DataFrame]:
    rows = [
        ledger_row("old", MAN, completed_at=at("2021-05-03 10:00"), credited_year=2021),
        ledger_row("m", MAN),
        ledger_row("w", WOMAN),
    ]
    hours_bank = bank(
        bank_row(MAN, employer=SCHOOL),
        bank_row(MAN, year=2021, employer=SCHOOL),
        bank_row(WOMAN, employer=FIRM),
    )
    return rows, hours_bank


def test_a_rerun_rewrites_only_the_files_whose_content_changed(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()
    first = write_provincial(ledger(*rows), hours_bank, tmp_path)
    before = stamps(tmp_path)

    rows[2] = {**rows[2], "hours_credited": 1.5}
    write_provincial(ledger(*rows), hours_bank, tmp_path)

    after = stamps(tmp_path)
    assert {p for p in before if before[p] != after[p]} == {file_of(first, 2022, "hours", FIRM)}


def test_a_rerun_with_the_same_ledger_rewrites_nothing(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()
    write_provincial(ledger(*rows), hours_bank, tmp_path)
    manifests = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("manifest.json")}
    before = stamps(tmp_path)

    write_provincial(ledger(*rows), hours_bank, tmp_path)

    assert stamps(tmp_path) == before
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("manifest.json")} == manifests


def test_a_newer_sighting_of_the_same_rows_leaves_every_file_alone(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()
    write_provincial(ledger(*rows), hours_bank, tmp_path)
    before = stamps(tmp_path)

    rows = [{**row, "last_seen_at": at("2022-07-01 02:00")} for row in rows]
    write_provincial(ledger(*rows), hours_bank, tmp_path)

    assert stamps(tmp_path) == before


def test_a_newer_completion_rewrites_the_files_of_that_employer_year(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()
    first = write_provincial(ledger(*rows), hours_bank, tmp_path)
    before = stamps(tmp_path)

    rows.append(ledger_row("w2", WOMAN, completed_at=at("2022-08-01 09:00")))
    write_provincial(ledger(*rows), hours_bank, tmp_path)

    after = stamps(tmp_path)
    changed = {p for p in before if before[p] != after[p]}
    assert changed == {file_of(first, 2022, kind, FIRM) for kind in ("hours", "learners")}


def test_the_workbook_creation_date_is_the_newest_completion_of_its_employer_year(
    tmp_path: Path,
) -> None:
    completion = ledger(
        ledger_row("1", MAN, completed_at=at("2022-06-01 02:00")),
        ledger_row("2", MAN, completed_at=at("2022-06-03 02:00")),
    )

    manifest = write_provincial(completion, bank(bank_row(MAN)), tmp_path)

    for f in manifest.files:
        assert openpyxl.load_workbook(f.path).properties.created == datetime(2022, 6, 2, 18, 0)


def test_a_workbook_deleted_by_hand_is_rewritten(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()
    first = write_provincial(ledger(*rows), hours_bank, tmp_path)
    deleted = file_of(first, 2022, "learners", SCHOOL)
    content = deleted.read_bytes()
    deleted.unlink()

    write_provincial(ledger(*rows), hours_bank, tmp_path)

    assert deleted.read_bytes() == content


def test_a_workbook_changed_by_hand_is_rewritten(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()
    first = write_provincial(ledger(*rows), hours_bank, tmp_path)
    edited = file_of(first, 2022, "hours", SCHOOL)
    content = edited.read_bytes()
    edited.write_bytes(content[:100])

    write_provincial(ledger(*rows), hours_bank, tmp_path)

    assert edited.read_bytes() == content


def test_leftover_temporary_files_are_removed(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()
    write_provincial(ledger(*rows), hours_bank, tmp_path)
    leftover = tmp_path / "provincial" / "2022" / "hours" / f".{SCHOOL}.0123abcd.tmp"
    leftover.write_bytes(b"PK")

    write_provincial(ledger(*rows), hours_bank, tmp_path)

    assert not leftover.exists()


def test_two_runs_of_the_same_ledger_write_byte_identical_folders(tmp_path: Path) -> None:
    rows, hours_bank = two_employers_two_years()

    write_provincial(ledger(*rows), hours_bank, tmp_path / "a")
    write_provincial(ledger(*rows), hours_bank, tmp_path / "b")

    assert folder_contents(tmp_path / "a") == folder_contents(tmp_path / "b")


def test_a_rerun_after_changes_leaves_the_folder_as_a_fresh_write_would(tmp_path: Path) -> None:
    people = [id_number(f"3709211980010100{i}") for i in range(3)]
    employers = ["甲单位", "乙单位", "丙单位"]
    rows = [ledger_row(str(i), p) for i, p in enumerate(people)]
    hours_bank = bank(*(bank_row(p, employer=e) for p, e in zip(people, employers, strict=True)))
    write_provincial(ledger(*rows), hours_bank, tmp_path / "rerun")

    rows[0] = {**rows[0], "course_title": "新课程"}
    rows[2] = {**rows[2], "hours_credited": 3.5}
    write_provincial(ledger(*rows), hours_bank, tmp_path / "rerun")
    write_provincial(ledger(*rows), hours_bank, tmp_path / "fresh")

    assert folder_contents(tmp_path / "rerun") == folder_contents(tmp_path / "fresh")


@pytest.mark.parametrize("engine", ["openpyxl", "calamine"])
def test_the_workbook_opens_in_pandas_with_text_ids_and_numeric_hours(
    written: Manifest, engine: str
) -> None:
    path = file_of(written, 2021, "hours", SCHOOL)
    # pandas turns digit-only text into numbers unless told: the reader asks for text
    frame = pd.read_excel(path, engine=engine, dtype={"身份证号": str, "证书编号": str})

    assert list(frame.columns) == list(HOURS_HEADER)
    assert frame.loc[0, ["身份证号", "证书编号", "完成日期"]].tolist() == [
        MAN,
        "0012345",
        "2022-04-01",
    ]
    assert frame.loc[0, ["序号", "年度", "学时"]].tolist() == [1, 2021, 2]
    assert pd.api.types.is_numeric_dtype(frame["学时"])


def test_rerun_removes_files_of_employers_no_longer_present(tmp_path: Path) -> None:
    write_provincial(ledger(ledger_row("1", MAN)), bank(bank_row(MAN, employer="旧单位")), tmp_path)

    manifest = write_provincial(ledger(ledger_row("1", MAN)), bank(bank_row(MAN)), tmp_path)

    on_disk = sorted(p.name for p in (tmp_path / "provincial" / "2022").rglob("*") if p.is_file())
    assert on_disk == ["manifest.json", f"{SCHOOL}.xlsx", f"{SCHOOL}.xlsx"]
    assert {f.employer for f in manifest.files} == {SCHOOL}


def test_colliding_employer_names_get_distinct_files(tmp_path: Path) -> None:
    people = [id_number(f"3709211980010100{i}") for i in range(4)]
    employers = ["A/B公司", "A:B公司", "abc公司", "ABC公司"]
    completion = ledger(*(ledger_row(str(i), p) for i, p in enumerate(people)))
    hours_bank = bank(*(bank_row(p, employer=e) for p, e in zip(people, employers, strict=True)))

    manifest = write_provincial(completion, hours_bank, tmp_path)

    names = [f.path.name for f in manifest.files if f.kind == "hours"]
    assert len({n.casefold() for n in names}) == 4
    assert all("~" in n for n in names)


def test_a_credited_record_without_a_bank_row_is_an_error_with_a_masked_id(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match=r"370921\*{8}") as raised:
        write_provincial(ledger(ledger_row("1", MAN)), bank(), tmp_path)

    assert MAN not in str(raised.value)


def test_a_year_without_credited_hours_gets_an_empty_manifest(tmp_path: Path) -> None:
    completion = ledger(ledger_row("1", MAN, state="not_credited", hours_credited=0.0))

    manifest = write_provincial(completion, bank(bank_row(MAN)), tmp_path)

    assert manifest.files == ()
    assert json.loads(manifest.manifests[2022].read_text(encoding="utf-8"))["files"] == []


def test_people_without_an_employer_go_to_a_named_file_with_an_empty_employer_cell(
    tmp_path: Path,
) -> None:
    manifest = write_provincial(
        ledger(ledger_row("1", MAN)), bank(bank_row(MAN, employer=None)), tmp_path
    )

    hours = next(f for f in manifest.files if f.kind == "hours")
    assert hours.path.name == "未填写单位.xlsx"
    assert as_dicts(hours.path)[0]["工作单位"] is None


@pytest.mark.parametrize(
    ("employer", "expected"),
    [
        ('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j"),
        ("tab\there\x01", "tab_here_"),
        ("单位名称. . ", "单位名称"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("com1", "_com1"),
        ("...", "_"),
        ("", "_"),
        (".hidden", "_.hidden"),
        ("泰安市第一中学（高中部）", "泰安市第一中学（高中部）"),
    ],
)
def test_safe_name_is_valid_on_windows_and_linux(employer: str, expected: str) -> None:
    assert safe_name(employer) == expected


def test_safe_name_caps_bytes_without_splitting_a_character() -> None:
    name = safe_name("山东" * 200)

    assert len(name.encode()) <= MAX_NAME_BYTES
    assert name == "山东" * 30


def test_long_colliding_names_stay_within_the_byte_cap() -> None:
    stems = file_stems(["单位" * 100 + "甲", "单位" * 100 + "乙"])

    assert len(set(stems.values())) == 2
    assert all(len(s.encode()) <= MAX_NAME_BYTES for s in stems.values())


def test_a_non_colliding_name_keeps_its_plain_stem() -> None:
    assert file_stems([SCHOOL, FIRM]) == {SCHOOL: SCHOOL, FIRM: FIRM}


def test_hours_rows_are_numbered_per_file(tmp_path: Path) -> None:
    completion = ledger(
        ledger_row("2", MAN, completed_at=at("2022-06-01 08:00")),
        ledger_row("1", MAN, completed_at=at("2022-05-01 08:00")),
    )

    manifest = write_provincial(completion, bank(bank_row(MAN)), tmp_path)

    rows = as_dicts(next(f.path for f in manifest.files if f.kind == "hours"))
    assert [(r["序号"], r["来源记录"]) for r in rows] == [(1, "ta_yx:1"), (2, "ta_yx:2")]
    assert pd.Series([r["学时"] for r in rows]).sum() == 4


class Ledger:
    """A ledger the provincial files read through `update_provincial`, counting the years it
    was read for."""

    def __init__(self) -> None:
        rows, self.hours_bank = two_employers_two_years()
        self.completion = ledger(*rows)
        self.reads: list[int] = []
        self.read_files: list[str] = []
        self.changed: set[str] | None = None

    def file_sizes(
        self, year: int, unknown: str, files: Collection[str] | None = None
    ) -> dict[str, int]:
        self.reads.append(year)
        credited, bank = self._rows(year, files, unknown, LEDGER_COLUMNS)
        return bank["employer"].fillna(unknown).value_counts().to_dict() if len(credited) else {}

    def file_rows(
        self, year: int, files: Collection[str] | None, unknown: str, columns: Collection[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        self.read_files += sorted(files or ())
        return self._rows(year, files, unknown, columns)

    def _rows(
        self, year: int, files: Collection[str] | None, unknown: str, columns: Collection[str]
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        bank = self.hours_bank[self.hours_bank["year"] == year]
        if files is not None:
            bank = bank[bank["employer"].fillna(unknown).isin(list(files))]
        credited = self.completion[
            (self.completion["credited_year"] == year)
            & self.completion["id_number"].isin(bank["id_number"])
        ]
        return credited[list(columns)], bank

    def changed_files(self, year: int, since: int) -> set[str] | None:
        return self.changed


def test_update_reads_only_the_files_the_ledger_changed_since_the_manifest(
    tmp_path: Path,
) -> None:
    source = Ledger()
    first = update_provincial(source, tmp_path, {2021: 1, 2022: 1})
    school = file_of(first, 2022, "hours", SCHOOL).stat().st_mtime_ns
    source.read_files.clear()
    source.completion.loc[source.completion["record_key"] == "ta_yx:w", "hours_credited"] = 1.5
    source.changed = {FIRM}

    again = update_provincial(source, tmp_path, {2021: 1, 2022: 2})

    assert source.read_files == [FIRM]
    assert file_of(again, 2022, "hours", SCHOOL).stat().st_mtime_ns == school
    assert {(f.kind, f.employer, f.rows) for f in again.files if f.year == 2022} == {
        (kind, employer, 1) for kind in ("hours", "learners") for employer in (SCHOOL, FIRM)
    }
    rows = as_dicts(file_of(again, 2022, "hours", FIRM))
    assert [r["学时"] for r in rows] == [1.5]


def test_update_renames_an_unread_file_whose_name_a_new_employer_now_shares(
    tmp_path: Path,
) -> None:
    source = Ledger()
    update_provincial(source, tmp_path, {2021: 1, 2022: 1})
    twin = f" {FIRM}"  # the same file name once trimmed
    third = id_number("37060219751231003")
    source.completion = pd.concat([source.completion, ledger(ledger_row("t", third))])
    source.hours_bank = pd.concat([source.hours_bank, bank(bank_row(third, employer=twin))])
    source.changed = {twin}

    again = update_provincial(source, tmp_path, {2021: 1, 2022: 2})

    names = {f.employer: f.path.name for f in again.files if (f.year, f.kind) == (2022, "hours")}
    assert names[FIRM] != names[twin] and all("~" in names[e] for e in (FIRM, twin))
    assert sorted(p.name for p in (tmp_path / "provincial/2022/hours").iterdir()) == sorted(
        names.values()
    )


def test_update_reads_only_the_years_whose_write_number_moved(tmp_path: Path) -> None:
    source = Ledger()
    update_provincial(source, tmp_path, {2021: 1, 2022: 1})

    update_provincial(source, tmp_path, {2021: 1, 2022: 2})

    assert source.reads == [2021, 2022, 2022]


def test_update_with_no_year_moved_reads_nothing_and_lists_every_file(tmp_path: Path) -> None:
    source = Ledger()
    first = update_provincial(source, tmp_path, {2021: 1, 2022: 1})

    again = update_provincial(source, tmp_path, {2021: 1, 2022: 1})

    assert source.reads == [2021, 2022]
    assert set(again.files) == set(first.files)
    assert again.compared == ()


def test_update_reads_a_year_again_when_one_of_its_files_was_deleted(tmp_path: Path) -> None:
    source = Ledger()
    first = update_provincial(source, tmp_path, {2021: 1, 2022: 1})
    file_of(first, 2022, "learners", FIRM).unlink()

    update_provincial(source, tmp_path, {2021: 1, 2022: 1})

    assert source.reads == [2021, 2022, 2022]
    assert file_of(first, 2022, "learners", FIRM).exists()


def test_a_night_reads_only_the_employer_whose_file_was_deleted(tmp_path: Path) -> None:
    source = Ledger()
    first = update_provincial(source, tmp_path, {2021: 1, 2022: 1})
    file_of(first, 2022, "learners", FIRM).unlink()
    source.read_files.clear()
    source.changed = set()

    update_provincial(source, tmp_path, {2021: 1, 2022: 1})

    assert source.read_files == [FIRM]
    assert file_of(first, 2022, "learners", FIRM).exists()


def test_update_reads_every_year_again_after_the_writer_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = Ledger()
    update_provincial(source, tmp_path, {2021: 1, 2022: 1})
    monkeypatch.setattr("pipelines.provincial.xlsx.FORMAT_VERSION", "test")

    update_provincial(source, tmp_path, {2021: 1, 2022: 1})

    assert source.reads == [2021, 2022, 2021, 2022]
