"""Course catalogues and the base records: ordinary learning that triggers no rule but R6.

A person's base records fall on distinct days (stratified over the year span), take distinct
courses on each platform, and catalogues of different platforms never share a course key, so no
base record meets another in D2, D3 or R7: their outcome is known without running any rule.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from sandbox.generator.people import (
    CITIES,
    DOT,
    DOT_VARIANTS,
    GBK_DOT_VARIANTS,
    GBK_RARE,
    HAN,
    RARE,
    TAIAN,
    YANTAI,
)
from sandbox.profiles import Catalogue
from schemas.raw import TZ
from schemas.vocabulary import PROFESSIONAL, PUBLIC

_QUALIFIERS = ["", "新时代", "现代", "高级", "+互联网"]
_PUBLIC_TOPICS = [
    "数字经济",
    "人工智能伦理",
    "职业道德",
    "法治建设",
    "心理健康",
    "科技创新",
    "乡村振兴战略",
    "生态文明",
    "知识产权",
    "网络安全",
    "营商环境",
    "安全生产",
    "国家安全",
    "健康中国",
    "诚信建设",
    "公文写作",
]
_PROFESSIONAL_TOPICS = [
    "机械设计",
    "电气工程",
    "建筑施工",
    "财务会计",
    "临床护理",
    "数学教学",
    "农作物栽培",
    "果树管理",
    "畜牧养殖",
    "工程测量",
    "材料工程",
    "智能制造",
    "软件工程",
    "物流管理",
    "市场营销",
    "旅游管理",
    "Python编程",
    "Excel数据处理",
    "BIM技术",
    "CAD制图",
    "PLC控制",
    "水产养殖",
    "土壤肥料",
    "食品检验",
]
_FORMS = ["概论", "专题讲座", "实践", "前沿进展", "案例解析", "政策解读", "基础", "应用", "导论"]

FAILED_SHARE = 0.08  # of base records with an exam result, failed
UNFINISHED_SHARE = 0.05  # of base records where courses in progress are listed, unfinished
MAX_PER_PERSON = 150
LOWER_X_SHARE = 0.3  # of records of IDs ending in X, written with a lower-case x
SPACED_NAME_SHARE = 0.04  # of Han names written with a space after the surname


COURSE_FIELDS: tuple[str, ...] = (
    "course_code",
    "course_title",
    "category_label",
    "wire_field",
    "course_key",
    "subject",
)
ID_QUIRKS_ALL: tuple[str, ...] = (
    "",
    "quote",
    "tab",
    "wrap",
    "space",
    "zero_width",
    "fullwidth",
    "lower_x",
    "fifteen",
    "bad_check",
    "bad_birth",
    "bad_province",
    "numeric",
)
NAME_FORMS: tuple[str, ...] = ("", "space", "alt", *(f"dot:{d}" for d in DOT_VARIANTS))


def catalogue(rng: np.random.Generator, platforms: Catalogue) -> pd.DataFrame:
    """Every platform's courses: disjoint course keys across platforms, some titles decorated."""
    combos = [
        (q + t + f, PUBLIC if t in _PUBLIC_TOPICS else PROFESSIONAL)
        for q, t, f in itertools.product(_QUALIFIERS, _PUBLIC_TOPICS + _PROFESSIONAL_TOPICS, _FORMS)
    ]
    titles = pd.DataFrame(combos, columns=["base", "subject"]).astype("str")
    titles = titles.iloc[rng.permutation(len(titles))].reset_index(drop=True)
    codes = np.array(platforms.codes)
    platform = np.arange(len(titles)) % len(codes)
    titles["platform"] = codes[platform]
    titles["ordinal"] = titles.groupby("platform").cumcount()
    n = len(titles)
    field_labels = [platforms[code].field_labels for code in platforms.codes]
    fielded = np.array([bool(f) for f in field_labels])[platform]
    titles.loc[fielded, "subject"] = PROFESSIONAL
    public = titles["subject"] == PUBLIC
    rural = rng.random(n) < 0.2
    rural_label = platforms.fact("rural_label")[platform]
    label = np.where(
        public,
        platforms.each(lambda p: p.facts.labels[PUBLIC])[platform],
        np.where(
            rural & np.not_equal(rural_label, None),
            rural_label.astype("str"),
            platforms.each(lambda p: p.facts.labels[PROFESSIONAL])[platform],
        ),
    )
    for fields in dict.fromkeys(f for f in field_labels if f):
        label = np.where(_uses(field_labels, fields)[platform], rng.choice(fields, n), label)
    titles["category_label"] = label
    wire_fields = [platforms[code].facts.wire_fields for code in platforms.codes]
    wire_field = np.full(n, None, dtype=object)
    for fields in dict.fromkeys(f for f in wire_fields if f):
        uses = _uses(wire_fields, fields)[platform]
        wire_field = np.where(uses, rng.choice(fields, n), wire_field)
    titles["wire_field"] = wire_field
    titles["course_code"] = np.where(
        platforms.fact("course_codes")[platform],
        titles["platform"].str.upper().str.replace("_", "-")
        + "-"
        + titles["ordinal"].astype("str").str.zfill(4),
        None,
    )
    titles["course_key"] = titles["base"].str.casefold()
    titles["course_title"] = _decorate(rng, titles["base"])
    titles["tenths"] = rng.choice(np.arange(5, 81), n, p=_hour_weights(np.arange(5, 81))).astype(
        "int64"
    )
    titles["minutes"] = np.clip(np.round(titles["tenths"] * 4.5), 23, 360).astype("int64")
    minutes = platforms.fact("hours")[platform] == "minutes"
    titles.loc[minutes, "tenths"] = np.floor(titles.loc[minutes, "minutes"] * 10 / 45 + 0.5)
    return titles.astype({"wire_field": "str", "course_code": "str", "tenths": "int64"})


def _uses(lists: list[tuple[str, ...]], fields: tuple[str, ...]) -> np.ndarray:
    """Which platforms (`lists` in catalogue order) draw their values from `fields`: one draw
    per distinct list, however many platforms share it."""
    return np.array([f == fields for f in lists], dtype=bool)


def _hour_weights(tenths: np.ndarray) -> np.ndarray:
    """Typical courses last whole or half hours; odd tenths stay possible."""
    weights = np.where(tenths % 10 == 0, 8.0, np.where(tenths % 5 == 0, 3.0, 0.3))
    return weights / weights.sum()


def _decorate(rng: np.random.Generator, base: pd.Series) -> pd.Series:
    """Titles as shown: a leading 【year】, a full-width space or upper case on a few (C3)."""
    n = len(base)
    draw = rng.random(n)
    years = pd.Series(rng.integers(2017, 2023, n), index=base.index).astype("str")
    shown = base.copy()
    tagged = draw < 0.06
    shown[tagged] = "【" + years[tagged] + "】" + base[tagged]
    spaced = (draw >= 0.06) & (draw < 0.1)
    shown[spaced] = base[spaced].str[:2] + "\u3000" + base[spaced].str[2:]
    upper = (draw >= 0.1) & (draw < 0.2) & base.str.contains("[A-Za-z]", regex=True)
    shown[upper] = base[upper].str.upper()
    return shown


def person_counts(rng: np.random.Generator, total: int) -> np.ndarray:
    """Records per base person: many light learners, some heavy ones; sums to `total`.

    At most MAX_PER_PERSON, fewer than any platform's catalogue holds, so a person never takes
    one course twice."""
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    guess = total // 12 + 4
    counts = np.where(
        rng.random(guess) < 0.75,
        rng.integers(2, 13, guess),
        rng.integers(20, MAX_PER_PERSON + 1, guess),
    )
    while counts.sum() < total:
        counts = np.concatenate([counts, counts])
    ends = np.cumsum(counts)
    keep = int(np.searchsorted(ends, total)) + 1
    counts = counts[:keep].copy()
    counts[-1] -= int(ends[keep - 1] - total)
    return counts[counts > 0]


def base_people(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Constraints for `n` base people: city and name kind (rare non-GBK names in Yantai only)."""
    city = np.where(rng.random(n) < 0.55, TAIAN, YANTAI)
    draw = rng.random(n)
    kind = np.select([draw < 0.03, draw < 0.07, draw < 0.1], [DOT, GBK_RARE, RARE], HAN)
    kind = np.where((kind == RARE) & (city == TAIAN), GBK_RARE, kind)
    return pd.DataFrame(
        {
            "city": city,
            "kind": kind,
            "employer_type": None,
            "region": None,
            "birth_year": pd.array([None] * n, dtype="Int64"),
            "check": None,
        }
    )


def coded(values: pd.Series, picks: np.ndarray) -> pd.Categorical:
    """`values.iloc[picks]` as a categorical, without touching a string per row."""
    codes, uniques = pd.factorize(values)
    return pd.Categorical.from_codes(codes[picks], categories=pd.Index(uniques, dtype="str"))


def base_records(
    rng: np.random.Generator,
    counts: np.ndarray,
    people: pd.DataFrame,
    courses: pd.DataFrame,
    years: tuple[int, int],
    platforms: Catalogue,
) -> pd.DataFrame:
    """Spec rows (see `wire.finish`) of the base records of `people`, `counts[i]` for person i."""
    person = np.repeat(np.arange(len(counts)), counts)
    n = len(person)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.arange(n) - starts
    per = counts[person]
    first = np.datetime64(f"{years[0]}-01-01")
    span = int((np.datetime64(f"{years[1] + 1}-01-01") - first).astype(int))
    lo = rank * span // per
    hi = (rank + 1) * span // per
    day = first + (lo + (rng.random(n) * (hi - lo)).astype(np.int64)).astype("timedelta64[D]")

    city = people["city"].to_numpy(dtype=str)
    platform = np.zeros(n, dtype=np.int64)
    for name in CITIES:
        mask = (city == name)[person]
        weights = platforms.weights(name)
        picks = rng.choice(list(weights), int(mask.sum()), p=list(weights.values()))
        platform[mask] = platforms.index.get_indexer(picks)
    pair = pd.Series(person * len(platforms.codes) + platform)
    within = pair.groupby(pair, sort=False).cumcount().to_numpy()
    offset = rng.integers(0, 1_000_000, len(counts))[person]
    by_platform = courses.assign(number=platforms.index.get_indexer(courses["platform"]))
    ordered = by_platform.sort_values(["number", "ordinal"]).reset_index(drop=True)
    sizes = ordered.groupby("platform").size().reindex(list(platforms.codes)).to_numpy()
    begins = np.cumsum(sizes) - sizes
    course = begins[platform] + (offset + within) % sizes[platform]

    timed = platforms.fact("timed")[platform]
    seconds = np.where(timed, rng.integers(7 * 3600, 23 * 3600, n), 0)
    local = day.astype("datetime64[s]") + seconds.astype("timedelta64[s]")
    completed = pd.Series(local).dt.tz_localize(TZ)
    year = day.astype("datetime64[Y]").astype(np.int64) + 1970

    draw = rng.random(n)
    exam = platforms.fact("exam")[platform]
    unfinishing = platforms.fact("unfinished")[platform]
    passed = draw >= np.where(exam, FAILED_SHARE, np.where(unfinishing, UNFINISHED_SHARE, 0.0))
    unfinished = unfinishing & ~passed
    score = np.where(
        passed,
        rng.integers(60, 101, n).astype("float64"),
        rng.integers(20, 60, n).astype("float64"),
    )
    score_null = ~platforms.fact("scored")[platform] | unfinished
    score_null |= rng.random(n) < platforms.fact("score_missing")[platform]
    score = np.where(score_null, np.nan, score)

    has_certificate = platforms.fact("certificates")[platform] & passed
    has_certificate &= ~(rng.random(n) < platforms.fact("certificate_missing")[platform])
    serial = np.where(has_certificate, year * 10**8 + np.arange(n), -1)  # see wire._certificates

    updating = platforms.fact("updating")[platform]
    lag = pd.to_timedelta(rng.integers(300, 3 * 86400, n), unit="s")
    # updates stop an hour before the year ends, leaving room for the epoch-1 changes
    year_end = pd.Series(
        (year - 1969).astype("datetime64[Y]").astype("datetime64[s]") - np.timedelta64(3600, "s")
    ).dt.tz_localize(TZ)
    updated = (completed + lag).where(completed + lag <= year_end, year_end).where(updating)

    in_minutes = platforms.fact("hours")[ordered["number"].to_numpy()] == "minutes"
    minutes = ordered["minutes"].to_numpy()[course]
    spec = pd.DataFrame(
        {
            "person": person,
            "platform": pd.Categorical.from_codes(platform, platforms.index),
            "completed_at": completed.where(~unfinished),
            "updated_at": updated,
            "start_year": year,
            "hours": ordered["tenths"].to_numpy()[course] / 10,
            "minutes": np.where(in_minutes[course], minutes, 0),
            "wire_hours": pd.Categorical.from_codes(np.full(n, -1), pd.Index([], dtype="str")),
            "passed": passed,
            "score": score,
            "cert_serial": serial,
            "certificate_no": pd.Categorical.from_codes(np.full(n, -1), pd.Index([], dtype="str")),
            "makeup": False,
            "makeup_year": pd.array([None] * n, dtype="Int64"),
        }
    )
    for field in COURSE_FIELDS:
        spec[field] = coded(ordered[field], course)
    kind = people["kind"].to_numpy(dtype=str)[person]
    spec["id_quirk"] = _id_quirks(rng, platforms, platform, people["id_number"], person)
    spec["name_form"] = _name_forms(rng, platforms.each(lambda p: p.encoding.gbk)[platform], kind)
    states = pd.Index(["credited", "not_credited"], dtype="str")
    spec["t_state"] = pd.Categorical.from_codes(np.where(passed, 0, 1), states)
    reasons = pd.Index(["R6"], dtype="str")
    spec["t_reason"] = pd.Categorical.from_codes(np.where(passed, -1, 0), reasons)
    spec["t_credited"] = np.where(passed, spec["hours"], 0.0)
    spec["t_trimmed"] = 0.0
    spec["t_year"] = pd.array(year, dtype="Int64")
    spec.loc[unfinished, "t_year"] = pd.NA
    spec["t_merged_rec"] = pd.array([None] * n, dtype="Int64")
    spec["rec"] = np.arange(n)
    spec["version"] = 0
    spec["epoch"] = 0
    spec["withdrawn"] = False
    return spec


def _id_quirks(
    rng: np.random.Generator,
    platforms: Catalogue,
    platform: np.ndarray,
    ids: pd.Series,
    person: np.ndarray,
) -> np.ndarray:
    """A valid quirk code per record (ID_QUIRKS_ALL), drawn from its family's table (C1 cleans
    them all)."""
    n = len(platform)
    draw = rng.random(n)
    quirk = np.zeros(n, dtype=np.int64)
    for number, code in enumerate(platforms.codes):
        mask = platform == number
        edge = 0.0
        for name, share in platforms[code].facts.id_quirks.items():
            quirk[mask & (draw >= edge) & (draw < edge + share)] = ID_QUIRKS_ALL.index(name)
            edge += share
    born_2000 = (ids.str[6:10] == "2000").to_numpy()[person]
    quirk[(quirk == ID_QUIRKS_ALL.index("fifteen")) & born_2000] = 0
    ends_x = ids.str.endswith("X").to_numpy()[person]
    quirk[(quirk == 0) & ends_x & (rng.random(n) < LOWER_X_SHARE)] = ID_QUIRKS_ALL.index("lower_x")
    return quirk


def _name_forms(rng: np.random.Generator, gbk: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """A name form code per record (NAME_FORMS): a middle-dot variant, a space, or canonical;
    `gbk` marks the records of platforms whose export is GBK."""
    n = len(kind)
    dots = np.array([NAME_FORMS.index(f"dot:{d}") for d in DOT_VARIANTS])
    gbk_dots = np.array([NAME_FORMS.index(f"dot:{d}") for d in GBK_DOT_VARIANTS])
    any_dot = dots[rng.integers(0, len(dots), n)]
    gbk_dot = gbk_dots[rng.integers(0, len(gbk_dots), n)]
    form = np.where(kind == DOT, np.where(gbk, gbk_dot, any_dot), 0)
    spaced = (kind != DOT) & (rng.random(n) < SPACED_NAME_SHARE)
    return np.where(spaced, NAME_FORMS.index("space"), form)
