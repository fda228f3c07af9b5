"""Time the hand-written OOXML writer (`pipelines.provincial.xlsx`) against rustpy-xlsxwriter.

`python -m benchmarks.xlsx_writers --rows 200000` builds the synthetic ledger of
`benchmarks.files` (ten years, with a tenth to spare), takes the first `--rows` hours rows of
one year in file order (`hours_rows`) and writes them with the provincial header and cells (ID
and certificate cells as text, `@`) with (a) the project's writer and (b) rustpy-xlsxwriter
(bindings of rust_xlsxwriter; in the `bench` extra), twice each:
as one workbook, and as one workbook per employer (the provincial files' shape). Timings are of
rows in memory to files on disk, without fsync; (a) includes `Sheets.of`, which also computes
the files' digests. It prints seconds, rows/s and bytes, and checks with python-calamine that
both writers' workbooks read back to the same cell values; it asserts nothing else.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import rustpy_xlsxwriter
from python_calamine import CalamineWorkbook

from benchmarks.files import YEARS, synthetic
from pipelines.provincial import HOURS_HEADER, NUMERIC_COLUMNS, file_stems, hours_rows
from pipelines.provincial.xlsx import Planned, Sheets, jobs, workbook_bytes

YEAR = 2020
ONE_FILE = "全部"
"""The `_file` of every row when the rows go to one workbook."""


def year_rows(rows: int) -> pd.DataFrame:
    """The first `rows` hours rows of `YEAR` in file order, from `benchmarks.files`' ledger."""
    completion, bank = synthetic(rows * len(YEARS) * 11 // 10)
    completion = completion[completion["credited_year"] == YEAR]
    hours = hours_rows(completion, bank[bank["year"] == YEAR])
    if len(hours) < rows:
        raise SystemExit(f"only {len(hours):,} hours rows in {YEAR}")
    return hours.head(rows)


def hand_written(frame: pd.DataFrame, folder: Path) -> list[Path]:
    """The project's writer: one workbook per `_file`, as `pipelines.provincial` builds them."""
    sheets = Sheets.of("hours", HOURS_HEADER, frame)
    stems = file_stems(sheets.employers)
    planned = [
        Planned(sheets, i, folder / f"{stems[employer]}.xlsx", None)
        for i, employer in enumerate(sheets.employers)
    ]
    for job in jobs(planned):
        job.path.write_bytes(workbook_bytes(job.header, job.rows, job.body, job.as_of))
    return [p.path for p in planned]


def rust(frame: pd.DataFrame, folder: Path) -> list[Path]:
    """rustpy-xlsxwriter: one workbook per `_file`, the header's columns, text columns as `@`."""
    text = rustpy_xlsxwriter.Format().set_num_format("@")
    formats = {h: text for h in HOURS_HEADER if h not in NUMERIC_COLUMNS}
    cells = [h for h in HOURS_HEADER if h != "序号"]
    stems = file_stems(frame["_file"].unique())
    paths = []
    for employer, rows in frame.groupby("_file", sort=False):
        sheet = rows[cells].reset_index(drop=True)  # else the index is written as a column
        sheet.insert(0, "序号", np.arange(1, len(rows) + 1))
        path = folder / f"{stems[str(employer)]}.xlsx"
        rustpy_xlsxwriter.write_worksheet(sheet, str(path), "Sheet1", column_formats=formats)
        paths.append(path)
    return paths


Writer = Callable[[pd.DataFrame, Path], list[Path]]


def timed(label: str, writer: Writer, frame: pd.DataFrame, folder: Path) -> list[Path]:
    folder.mkdir()
    started = time.perf_counter()
    paths = writer(frame, folder)
    seconds = time.perf_counter() - started
    size = sum(p.stat().st_size for p in paths)
    print(
        f"{label:<28} {seconds:7.2f} s  {len(frame) / seconds:10,.0f} rows/s  "
        f"{len(paths):4d} files  {size / 1e6:7.2f} MB"
    )
    return paths


def cells(path: Path) -> list[list[object]]:
    return CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0).to_python()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="hours rows of one year")
    args = parser.parse_args()
    rows = year_rows(args.rows)
    print(
        f"{len(rows):,} hours rows of {YEAR}, {rows['_file'].nunique()} employers; "
        f"rustpy-xlsxwriter {rustpy_xlsxwriter.get_version()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for shape, frame in (
            ("one workbook", rows.assign(_file=ONE_FILE)),
            ("per employer", rows),
        ):
            ours = timed(f"hand-written, {shape}", hand_written, frame, out / f"ours {shape}")
            theirs = timed(f"rustpy-xlsxwriter, {shape}", rust, frame, out / f"rust {shape}")
            same = [p.name for p in ours] == [p.name for p in theirs] and all(
                cells(a) == cells(b) for a, b in zip(ours, theirs, strict=True)
            )
            print(f"{shape}: same cell values read back: {same}")


if __name__ == "__main__":
    main()
