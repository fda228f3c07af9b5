"""Reading a unit's file (FORMS.md "Where forms come from"): hostile cells, refusals, versions."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import xlsxwriter

from connectors.forms import HEADER, FormFile, FormRefused, form_records, read_form, withdrawals
from sandbox.generator.forms import workbook
from tests.forms.factory import cells, register
from tests.rules.factory import AS_OF, PERSON


def test_a_file_that_is_not_a_workbook_is_refused() -> None:
    with pytest.raises(FormRefused, match="not a readable workbook"):
        read_form(b"%PDF-1.4 not a spreadsheet")


def test_a_workbook_without_the_sheet_is_refused() -> None:
    with pytest.raises(FormRefused, match="no sheet"):
        read_form(workbook([cells(序号=1)], sheet="Sheet1"))


def test_a_header_missing_a_column_is_refused_naming_it() -> None:
    header = tuple(h for h in HEADER if h != "证明材料")
    with pytest.raises(FormRefused, match="证明材料"):
        read_form(workbook([cells(序号=1)], header=header))


def test_repeated_row_numbers_are_refused() -> None:
    with pytest.raises(FormRefused, match="序号"):
        read_form(workbook([cells(序号=1), cells(序号=1)]))


def test_columns_are_found_by_name_in_any_order_beside_extra_columns() -> None:
    header = ("备注", *reversed(HEADER))
    rows = read_form(workbook([cells(序号=7, 备注="x")], header=header))
    assert rows.loc[0, "序号"] == "7"
    assert rows.loc[0, "身份证号"] == PERSON


def test_other_sheets_are_ignored() -> None:
    book = openpyxl.load_workbook(io.BytesIO(workbook([cells(序号=1)])))
    book.create_sheet("说明", 0).append(["填表说明", "=1+1"])
    buffer = io.BytesIO()
    book.save(buffer)
    assert len(read_form(buffer.getvalue())) == 1


def test_a_formula_reads_as_the_value_the_unit_saw() -> None:
    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer, {"in_memory": True}) as book:
        sheet = book.add_worksheet("登记表")
        sheet.write_row(0, 0, HEADER)
        for c, name in enumerate(HEADER):
            value = cells(序号=1)[name] if name in cells() or name == "序号" else ""
            sheet.write(1, c, value) if not isinstance(value, str) else sheet.write_string(
                1, c, value
            )
        sheet.write_formula(1, HEADER.index("学时"), "=3*2", None, 6)
    assert read_form(buffer.getvalue()).loc[0, "学时"] == "6"


def test_a_numeric_id_cell_arrives_as_the_float_it_became_with_15_digits() -> None:
    rows = read_form(workbook([cells(序号=1, 身份证号=370902198801011234)]))
    assert rows.loc[0, "身份证号"].startswith("3.70902198801011")
    assert rows.loc[0, "身份证号"].endswith("e+17")


def test_merged_cells_hold_their_value_in_the_first_row_only() -> None:
    book = openpyxl.load_workbook(io.BytesIO(workbook([cells(序号=1), cells(序号=2)])))
    sheet = book["登记表"]
    column = HEADER.index("工作单位") + 1
    sheet.cell(3, column).value = None
    sheet.merge_cells(start_row=2, end_row=3, start_column=column, end_column=column)
    buffer = io.BytesIO()
    book.save(buffer)
    rows = read_form(buffer.getvalue())
    assert rows["工作单位"].tolist() == ["泰安市第一中学", ""]


def test_a_row_with_an_empty_employer_takes_the_units_name() -> None:
    rows = read_form(workbook([cells(序号=1, 工作单位="")]))
    form = FormFile("泰安市第二中学", 2022, Path("x.xlsx"), "cd" * 32)
    records = form_records(rows, form, register=register(), pulled_at=AS_OF)
    assert records.loc[0, "employer"] == "泰安市第二中学"


def test_a_rows_key_is_unit_year_number_and_file_version() -> None:
    rows = read_form(workbook([cells(序号=3)]))
    form = FormFile("单位", 2022, Path("单位.xlsx"), "0123456789abcdef" * 4)
    records = form_records(rows, form, register=register(), pulled_at=AS_OF)
    assert records.loc[0, "source_key"] == "单位:2022:3:0123456789abcdef"


def test_a_replaced_or_removed_file_withdraws_its_rows_and_the_live_version_stays() -> None:
    known = frozenset({"甲:2022:1:aaaa", "甲:2022:2:aaaa", "甲:2022:1:bbbb", "乙:2022:1:cccc"})
    gone = withdrawals(known, {"甲": "bbbb"}, 2022, AS_OF)
    assert sorted(gone["source_key"]) == ["乙:2022:1:cccc", "甲:2022:1:aaaa", "甲:2022:2:aaaa"]
    assert gone["withdrawn"].all()


def test_ten_thousand_rows_are_read_and_turned_into_records() -> None:
    """A large unit's file (its speed is measured by `python -m benchmarks.forms`)."""
    rows = [cells(序号=i, 项目名称=f"培训{i % 97}") for i in range(1, 10_001)]
    texts = read_form(workbook(rows))
    form = FormFile("大单位", 2022, Path("大单位.xlsx"), "ef" * 32)
    records = form_records(texts, form, register=register(), pulled_at=AS_OF)
    assert len(records) == 10_000
    assert records["source_key"].is_unique
    assert pd.notna(records["completed_at"]).all()
