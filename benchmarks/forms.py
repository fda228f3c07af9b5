"""Time reading units' registration forms (FORMS.md): workbook to records.

`python -m benchmarks.forms --rows 100000` writes one unit's 登记表 of that many training rows
(people and projects varied) and times `read_form` (the XLSX to text cells) and `form_records`
(cells to raw records against the filing register) three times each. It prints seconds and
rows per second of each part and of both; it asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from connectors.forms import REGISTER_HEADER, FormFile, form_records, read_form, read_register
from sandbox.generator.forms import FILING, filing_entry, workbook

YEAR = 2022


def form_rows(count: int) -> list[dict[str, object]]:
    """`count` rows of reviewed training, a person and a project per row, some filed."""
    return [
        {
            "序号": i,
            "姓名": "张三",
            "身份证号": f"370902{1960 + i % 40}0101{i % 1000:03d}X",
            "工作单位": "泰安市第一中学",
            "年度": YEAR,
            "类别": "培训进修",
            "科目类别": "专业科目",
            "项目名称": f"培训{i % 97}",
            "主办单位或成果说明": "泰安市人社局",
            "开始日期": "2022-05-03",
            "结束日期": "2022-05-03",
            "学时": 6,
            "件数": "",
            "备案编号": FILING if i % 3 else "",
            "学习档案编号": "",
            "证明材料": "结业证书.pdf",
            "单位审核人": "李四",
            "单位审核日期": "2022-06-01",
        }
        for i in range(1, count + 1)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.forms", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    data = workbook(form_rows(args.rows))
    register = read_register(
        workbook([filing_entry(FILING, "急救技能培训", 40)], "备案", REGISTER_HEADER)
    )
    form = FormFile("泰安市第一中学", YEAR, Path("泰安市第一中学.xlsx"), "ef" * 32)
    pulled = pd.Timestamp("2023-01-05", tz="Asia/Shanghai")
    print(f"one form of {args.rows:,} rows, {len(data) / 2**20:.1f} MiB")
    for attempt in range(1, args.repeat + 1):
        started = time.perf_counter()
        texts = read_form(data)
        read = time.perf_counter() - started
        records = form_records(texts, form, register=register, pulled_at=pulled)
        total = time.perf_counter() - started
        assert len(records) == args.rows
        print(
            f"run {attempt}: read_form {read:.2f} s ({args.rows / read:,.0f} rows/s), "
            f"form_records {total - read:.2f} s, both {total:.2f} s "
            f"({args.rows / total:,.0f} rows/s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
