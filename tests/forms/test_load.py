"""Forms through the store and the ledger on both engines: versions, withdrawals, refusals,
and a unit's result workbook read back."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from python_calamine import CalamineWorkbook

from pipelines.forms import (
    RESULT_HEADER,
    RESULT_LEDGER_COLUMNS,
    FormsLoad,
    load_year,
    update_results,
)
from pipelines.refresh import refresh_outputs
from pipelines.store import Store
from sandbox.generator.forms import workbook
from schemas.platforms import FORMS
from tests.forms.factory import FILED, cells, register
from tests.rules.factory import AS_OF

YEAR = 2022


def upload(folder: Path, unit: str, *rows: dict) -> Path:
    path = folder / str(YEAR) / f"{unit}.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(workbook([{"序号": i, **row} for i, row in enumerate(rows, start=1)]))
    return path


def load(store: Store, folder: Path) -> FormsLoad:
    return load_year(store, folder, YEAR, register=register(FILED), cities={}, pulled_at=AS_OF)


def live_form_keys(store: Store) -> list[str]:
    raw = store.raw_records([FORMS], payload=False)
    return sorted(raw.loc[~raw["withdrawn"], "source_key"])


def test_a_replaced_file_withdraws_its_earlier_rows(database_url: str, tmp_path: Path) -> None:
    store = Store.from_url(database_url)
    store.migrate()
    upload(tmp_path, "甲单位", cells(), cells(项目名称="二"))
    load(store, tmp_path)
    upload(tmp_path, "甲单位", cells(学时=4))
    outcome = load(store, tmp_path)
    keys = live_form_keys(store)
    assert outcome.withdrawn == 2
    assert len(keys) == 1 and keys[0].startswith(f"甲单位:{YEAR}:1:")
    store.dispose()


def test_a_removed_file_withdraws_its_rows(database_url: str, tmp_path: Path) -> None:
    store = Store.from_url(database_url)
    store.migrate()
    path = upload(tmp_path, "甲单位", cells())
    load(store, tmp_path)
    path.unlink()
    load(store, tmp_path)
    assert live_form_keys(store) == []
    store.dispose()


def test_an_unreadable_file_is_refused_and_the_others_go_on(
    database_url: str, tmp_path: Path
) -> None:
    store = Store.from_url(database_url)
    store.migrate()
    upload(tmp_path, "甲单位", cells())
    (tmp_path / str(YEAR) / "乙单位.xlsx").write_bytes(b"not a workbook")
    outcome = load(store, tmp_path)
    assert list(outcome.refused) == ["乙单位"]
    assert "not a readable workbook" in outcome.refused["乙单位"]
    assert len(live_form_keys(store)) == 1
    store.dispose()


def test_a_units_result_workbook_reads_back_with_result_and_reason(
    database_url: str, tmp_path: Path
) -> None:
    store = Store.from_url(database_url)
    store.migrate()
    folder, out = tmp_path / "forms", tmp_path / "out"
    upload(
        folder,
        "甲单位",
        cells(),
        cells(单位审核人="", 项目名称="二"),
        cells(证明材料="", 项目名称="三"),
    )
    load(store, folder)
    refresh_outputs(store)

    def read(year: int) -> pd.DataFrame:
        where = (f"platform = '{FORMS}' AND pull_year = {year}",)
        return store.read_table("completion", columns=RESULT_LEDGER_COLUMNS, where=where)

    (written,) = update_results(folder, out, [YEAR], read)
    rows = CalamineWorkbook.from_path(str(written.path)).get_sheet_by_name("登记表").to_python()
    assert written.path == out / "provincial" / str(YEAR) / "forms" / "甲单位.xlsx"
    assert tuple(rows[0]) == RESULT_HEADER
    results = [(r[0], r[-2], r[-1]) for r in rows[1:]]
    assert results == [
        ("1", "登记", "登记6学时"),
        ("2", "待审核", "单位尚未审核：请填写单位审核人和单位审核日期"),
        ("3", "未登记", "未附证明材料"),
    ]
    assert rows[1][2] == cells()["身份证号"]  # the ID as submitted, as text
    (again,) = update_results(folder, out, [YEAR], read)
    assert not again.written
    store.dispose()
