"""What units and the province get from forms: 学习方式 in the hours file, `xueshi forms check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from python_calamine import CalamineWorkbook

from connectors.forms import REGISTER_HEADER
from pipelines.cli import main
from pipelines.provincial import write_provincial
from sandbox.generator.forms import workbook
from tests.forms.factory import FILED, cells
from tests.load.frames import bank, bank_row, id_number, ledger, ledger_row

PERSON = id_number("37090219800101001")


@pytest.mark.parametrize(
    ("mode", "label"),
    [("training", "培训进修类"), ("self_study", "自学类"), ("conversion", "折算类")],
)
def test_the_hours_file_names_the_learning_mode_and_the_unit_as_organizer(
    tmp_path: Path, mode: str, label: str
) -> None:
    completion = ledger(
        ledger_row("x", PERSON, record_key="forms:单位:2022:1:abcd", platform="forms", mode=mode)
    )
    manifest = write_provincial(completion, bank(bank_row(PERSON)), tmp_path)
    (hours,) = [f.path for f in manifest.files if f.kind == "hours"]
    rows = CalamineWorkbook.from_path(str(hours)).get_sheet_by_index(0).to_python()
    row = dict(zip(rows[0], rows[1], strict=True))
    assert (row["学习方式"], row["主办单位"]) == (label, "单位登记")


def unit_file(folder: Path, *rows: dict) -> Path:
    year = folder / "2022"
    year.mkdir(parents=True)
    (year / "备案登记.xlsx").write_bytes(workbook([FILED], "备案", REGISTER_HEADER))
    path = year / "甲单位.xlsx"
    path.write_bytes(workbook([{"序号": i, **r} for i, r in enumerate(rows, start=1)]))
    return path


def test_forms_check_prints_each_rows_result_and_no_id_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = unit_file(tmp_path, cells(), cells(证明材料="", 项目名称="二"))
    assert main(["forms", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1\t登记\t登记6学时" in out
    assert "2\t未登记\t未附证明材料" in out
    assert cells()["身份证号"] not in out


def test_forms_check_writes_the_result_workbook_a_unit_would_get(tmp_path: Path) -> None:
    path = unit_file(tmp_path, cells(单位审核人=""))
    out = tmp_path / "结果.xlsx"
    assert main(["forms", "check", str(path), "--out", str(out)]) == 0
    rows = CalamineWorkbook.from_path(str(out)).get_sheet_by_name("登记表").to_python()
    assert rows[1][-2:] == ["待审核", "单位尚未审核：请填写单位审核人和单位审核日期"]


def test_forms_check_refuses_a_file_that_is_not_a_workbook_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "乙单位.xlsx"
    path.write_bytes(b"not a workbook")
    assert main(["forms", "check", str(path)]) == 1
    assert "refused: not a readable workbook" in capsys.readouterr().err
