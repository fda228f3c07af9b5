"""Hostile text in every text column survives the database and the workbooks unchanged."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils.escape import unescape
from python_calamine import CalamineWorkbook

from pipelines import provincial
from pipelines.provincial import HOURS_HEADER, NUMERIC_COLUMNS
from pipelines.store import NUL_REPLACEMENT, Store, values
from schemas.ledger import COMPLETION_DTYPES
from schemas.platforms import PLATFORMS
from schemas.raw import RAW_DTYPES
from tests.load.frames import bank, bank_row, id_number, ledger, ledger_row, raw_frame, raw_row

CONTROL = "".join(chr(c) for c in [*range(1, 32), 127])
HOSTILE: tuple[str, ...] = (
    'O\'Brien "the" `quoted`',
    "'; drop table x; --",
    "x" * 10_000,
    f"a{CONTROL}b",
    "\r\nline\nbreaks\r",
    "😀 emoji 👨‍👩‍👧",
    "𠮷野家",
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\tTab first",
    "\\N",
    "NULL",
    "",
    "  spaced  ",
    ",comma,",
    "_x0041_",
)
PERSON = id_number("37092119800101001")


def text_columns(dtypes: dict[str, str], *keep: str) -> list[str]:
    return [c for c, t in dtypes.items() if t == "str" and c not in keep]


def test_hostile_text_in_every_raw_column_reads_back_unchanged(store: Store) -> None:
    columns = text_columns(RAW_DTYPES, "platform", "source_key")
    rows = [raw_row(f"k{i}", **dict.fromkeys(columns, value)) for i, value in enumerate(HOSTILE)]
    batch = raw_frame(*rows)

    store.store_batch("ta_yx", 2022, batch, {"last": HOSTILE[1]})

    stored = store.raw_records().set_index("source_key").loc[batch["source_key"]]
    pd.testing.assert_frame_equal(
        stored[columns].reset_index(drop=True), batch[columns].reset_index(drop=True)
    )
    assert store.watermark("ta_yx", 2022) == {"last": HOSTILE[1]}


def test_hostile_text_in_every_ledger_column_reads_back_unchanged(store: Store) -> None:
    columns = text_columns(COMPLETION_DTYPES, "record_key")
    rows = [
        ledger_row(f"k{i:02d}", PERSON, **dict.fromkeys(columns, value))
        for i, value in enumerate(HOSTILE)
    ]
    completion = ledger(*rows)

    store.replace_outputs(completion, bank(), pd.DataFrame({"id_number": [], "names": []}))

    stored = store.read_table("completion")
    pd.testing.assert_frame_equal(stored[columns], completion[columns])


def test_nul_is_stored_as_the_replacement_character_on_both_engines(store: Store) -> None:
    store.store_batch("ta_yx", 2022, raw_frame(raw_row("1", name="张\x00三")), {})

    assert store.raw_records()["name"].tolist() == [f"张{NUL_REPLACEMENT}三"]


def test_csv_cut_anywhere_into_blocks_reads_back_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL's COPY sends its CSV in blocks that cut values anywhere, and Arrow parses
    it in blocks of its own as it arrives."""
    monkeypatch.setattr(values, "CSV_BLOCK_BYTES", 16_384)
    dtypes = {"text": "str", "number": "Int64"}
    frame = pd.DataFrame({"text": [*HOSTILE, None] * 20, "number": range(len(HOSTILE) * 20 + 20)})
    frame = frame.astype(dtypes)
    csv = b"".join(chunk for _, chunk in values.csv_chunks(values.prepare(frame, dtypes), 7))

    blocks = [csv[start : start + 5] for start in range(0, len(csv), 5)]

    pd.testing.assert_frame_equal(values.frame_from_csv(blocks, dtypes), frame)


def openpyxl_text(value: str | None) -> str:
    """Undo the OOXML `_xHHHH_` escapes that openpyxl leaves in an inline string's text."""
    return "" if value is None else unescape(value)


@pytest.fixture
def hostile_workbook(tmp_path: Path) -> Path:
    """An hours workbook whose every platform text is a hostile value, one per row."""
    rows = [
        ledger_row(
            f"k{i:02d}",
            PERSON,
            course_title=value,
            certificate_no=value,
            completed_at=pd.Timestamp(f"2022-03-01 {i:02d}:00", tz="Asia/Shanghai"),
        )
        for i, value in enumerate(HOSTILE)
    ]
    person = bank_row(PERSON, name=HOSTILE[3], employer=HOSTILE[1])
    manifest = provincial.write_provincial(ledger(*rows), bank(person), tmp_path)
    return next(f.path for f in manifest.files if f.kind == "hours")


def test_hostile_text_in_a_workbook_reads_back_unchanged_with_openpyxl(
    hostile_workbook: Path,
) -> None:
    sheet = openpyxl.load_workbook(hostile_workbook).active
    title, certificate = HOURS_HEADER.index("项目名称") + 1, HOURS_HEADER.index("证书编号") + 1

    rows = range(2, sheet.max_row + 1)

    assert [openpyxl_text(sheet.cell(r, title).value) for r in rows] == list(HOSTILE)
    assert [openpyxl_text(sheet.cell(r, certificate).value) for r in rows] == list(HOSTILE)
    assert openpyxl_text(sheet.cell(2, 2).value) == HOSTILE[3]
    assert sheet.cell(2, 4).value == HOSTILE[1]


def test_every_cell_of_a_hostile_workbook_reads_back_with_its_value_and_type(
    hostile_workbook: Path,
) -> None:
    sheet = openpyxl.load_workbook(hostile_workbook).active
    expected = [
        {
            "序号": i + 1,
            "姓名": HOSTILE[3],
            "身份证号": PERSON,
            "工作单位": HOSTILE[1],
            "年度": 2022,
            "科目类别": "专业科目",
            "学习方式": "培训进修类",
            "项目名称": value,
            "主办单位": PLATFORMS["ta_yx"].organizer,
            "完成日期": "2022-03-01",
            "学时": 2,
            "是否补学": "否",
            "证书编号": value,
            "来源记录": f"ta_yx:k{i:02d}",
        }
        for i, value in enumerate(HOSTILE)
    ]

    cells = [dict(zip(HOURS_HEADER, row, strict=True)) for row in sheet.iter_rows(min_row=2)]

    assert [
        {h: c.value if h in NUMERIC_COLUMNS else openpyxl_text(c.value) for h, c in row.items()}
        for row in cells
    ] == expected
    for row in cells:
        for h, c in row.items():
            if h in NUMERIC_COLUMNS:
                assert (c.data_type, type(c.value)) == ("n", int), h
            elif c.value is not None:
                assert (c.data_type, c.number_format) == ("s", "@"), h


def test_hostile_text_in_a_workbook_reads_back_unchanged_with_calamine(
    hostile_workbook: Path,
) -> None:
    rows = CalamineWorkbook.from_path(str(hostile_workbook)).get_sheet_by_index(0).to_python()[1:]

    assert [r[HOURS_HEADER.index("项目名称")] for r in rows] == list(HOSTILE)
    assert [r[HOURS_HEADER.index("证书编号")] for r in rows] == list(HOSTILE)
    assert rows[0][HOURS_HEADER.index("姓名")] == HOSTILE[3]


def test_formula_looking_text_is_a_string_cell_not_a_formula(
    hostile_workbook: Path,
) -> None:
    sheet = openpyxl.load_workbook(hostile_workbook).active
    column = HOURS_HEADER.index("项目名称") + 1

    formula_like = [
        sheet.cell(r, column)
        for r in range(2, sheet.max_row + 1)
        if (sheet.cell(r, column).value or "")[:1] in {"=", "+", "-", "@", "\t"}
    ]

    assert {c.value for c in formula_like} >= {"=1+1", "+1", "-1", "@SUM(A1)"}
    assert {c.data_type for c in formula_like} == {"s"}
