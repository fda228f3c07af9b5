"""Properties of the F rules on random form rows beside platform records (as for R6–R7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.forms import HEADER, FormFile, form_records
from pipelines.rules import apply_rules
from schemas.raw import TZ
from tests.forms.factory import cells, register
from tests.rules.factory import AS_OF, OTHER, PERSON, raw, record

EXAMPLES = 25
rows = st.fixed_dictionaries(
    {
        "身份证号": st.sampled_from([PERSON, OTHER, "123"]),
        "类别": st.sampled_from(
            ["培训进修", "培训进修", "自学", "成果折算", "论文著作折算", "其他"]
        ),
        "项目名称": st.sampled_from(["甲", "乙", "丙", "数据安全"]),
        "开始日期": st.sampled_from(["2022-05-02", "2022-05-03", ""]),
        "结束日期": st.sampled_from(["2022-05-03", "2022-05-04", "2022-09-01"]),
        "学时": st.sampled_from(["6", "12", "30", "0", "x"]),
        "件数": st.sampled_from(["", "1", "2"]),
        "备案编号": st.sampled_from(["BA-2022-001", "", "BA-9"]),
        "学习档案编号": st.sampled_from(["", "XX-1"]),
        "证明材料": st.sampled_from(["", "a.pdf"]),
        "单位审核人": st.sampled_from(["李四", "李四", ""]),
    }
)
online = st.fixed_dictionaries(
    {
        "course_title": st.sampled_from(["数据安全", "甲"]),
        "hours": st.sampled_from([2.0, 5.0, 8.0]),
        "completed_at": st.sampled_from(
            [pd.Timestamp("2022-05-03 09:00", tz=TZ), pd.Timestamp("2022-05-04 20:00", tz=TZ)]
        ),
    }
)


def frames(form_rows: list[dict], platform_rows: list[dict]) -> pd.DataFrame:
    texts = pd.DataFrame(
        [{**cells(), **row, "序号": str(i)} for i, row in enumerate(form_rows, start=1)],
        columns=list(HEADER),
    ).astype("str")
    form = FormFile("单位", 2022, Path("单位.xlsx"), "ab" * 32)
    forms = form_records(texts, form, register=register(), pulled_at=AS_OF)
    platform = raw(
        *(record(**{**row, "source_key": f"p{i}"}) for i, row in enumerate(platform_rows))
    )
    return pd.concat([forms, platform], ignore_index=True)


inputs = st.tuples(st.lists(rows, min_size=1, max_size=12), st.lists(online, max_size=3))


@settings(max_examples=EXAMPLES, deadline=None)
@given(inputs)
def test_every_form_row_ends_in_one_state_and_caps_hold(data: tuple[list, list]) -> None:
    source = frames(*data)
    ledger = apply_rules(source, as_of=AS_OF).completion
    forms = ledger.loc[ledger["platform"].eq("forms")]
    assert len(forms) == len(data[0])
    assert forms["state"].isin(["credited", "merged", "not_credited", "quarantined"]).all()
    assert not (forms["state"].ne("credited") & forms["reason"].isna()).any()
    credited = ledger.loc[ledger["state"].eq("credited")]
    for mode, cap in (("self_study", 40), ("conversion", 30)):
        rows_of_mode = credited.loc[credited["mode"].eq(mode)]
        per_year = rows_of_mode.groupby(["id_number", "credited_year"])["hours_credited"].sum()
        assert (per_year <= cap + 1e-9).all()
    kept = credited["hours_credited"] + credited["hours_trimmed"]
    assert np.allclose(kept, credited["hours_reported"])


@settings(max_examples=EXAMPLES, deadline=None)
@given(inputs, st.randoms(use_true_random=False))
def test_the_ledger_does_not_depend_on_row_order_and_is_idempotent(
    data: tuple[list, list], shuffle: object
) -> None:
    source = frames(*data)
    once = apply_rules(source, as_of=AS_OF).completion
    order = list(range(len(source)))
    shuffle.shuffle(order)  # type: ignore[attr-defined]
    shuffled = apply_rules(source.iloc[order].reset_index(drop=True), as_of=AS_OF).completion
    again = apply_rules(pd.concat([source, source], ignore_index=True), as_of=AS_OF).completion
    pd.testing.assert_frame_equal(once, shuffled)
    pd.testing.assert_frame_equal(once, again)
