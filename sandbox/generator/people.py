"""The people of the generated world: valid ID numbers, Han names in their spellings, employers.

Everything here is drawn from a numpy Generator, so a seed fixes the world. ID numbers are built
from their parts (region, birth date, sequence) and get their MOD 11-2 check character computed
column-wise; the quirky and invalid forms a platform shows are derived from them in `wire.py`.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

TAIAN = "taian"
YANTAI = "yantai"
CITIES: tuple[str, ...] = (TAIAN, YANTAI)
REGIONS: dict[str, tuple[str, ...]] = {
    TAIAN: ("370902", "370911", "370921", "370923", "370982", "370983"),
    YANTAI: (
        "370602",
        "370611",
        "370612",
        "370613",
        "370614",
        "370681",
        "370682",
        "370683",
        "370685",
        "370686",
        "370687",
    ),
}
CITY_NAMES = {TAIAN: "泰安", YANTAI: "烟台"}
BIRTH_FIRST = np.datetime64("1960-01-01")
BIRTH_LAST = np.datetime64("2000-12-31")

ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
CHECK_CHARS = np.array(list("10X98765432"))

# Name kinds: how a person's name is built and which spellings its records show.
HAN, DOT, GBK_RARE, RARE, YU = "han", "dot", "gbk_rare", "rare", "yu"
MIDDLE_DOT = "·"
DOT_VARIANTS: tuple[str, ...] = ("·", "・", "•", "‧", "⋅", "∙", ".", "．")
GBK_DOT_VARIANTS: tuple[str, ...] = ("·", ".", "．")

SURNAMES = [
    *"王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁",
    *"魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段",
    *("欧阳", "司马", "诸葛", "於"),
]
GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂兰飞华玲建国志红鹏辉宇浩凯瑞博文斌鑫宁"
    "婷雪琳晨阳雨欣怡佳琪梓萱子轩泽宇思远振海春燕玉凤荣新颖倩彤晓东亮鸿丹琦旭峰俊波"
)
GBK_RARE_CHARS = list("堃喆赟犇淼昇珺玥翀璟")
RARE_CHARS = ["𠮷", "䶮", "𪚥"]
DOT_FIRST = ["阿依古丽", "买买提", "热依拉", "艾力", "古丽娜尔", "努尔", "迪丽拜尔", "吐尔逊"]
DOT_SECOND = ["买买提", "艾则孜", "阿不都", "吾斯曼", "托合提", "亚森", "热合曼", "司马义"]

_BRANDS = {
    TAIAN: list("泰岱汶岳鲁华金瑞宏鑫恒中天东新润"),
    YANTAI: list("芝蓬渤黄海龙昆万鲁福莱招栖华金盛"),
}
_BRAND_TAILS = list("山宗河源通达泰丰盛安和信远腾")
_INDUSTRIES = ["科技", "建设", "机械", "化工", "食品", "物流", "电力", "新材料", "环保", "医药"]
_FORMS = ["有限公司", "股份有限公司", "集团有限公司"]
_DISTRICTS = {
    TAIAN: ["泰山区", "岱岳区", "宁阳县", "东平县", "新泰市", "肥城市"],
    YANTAI: ["芝罘区", "福山区", "牟平区", "莱山区", "蓬莱区", "龙口市", "莱阳市", "莱州市"],
}
_INSTITUTIONS = [
    "第一中学",
    "第二中学",
    "第三中学",
    "实验小学",
    "实验中学",
    "人民医院",
    "中医医院",
    "妇幼保健院",
    "职业中等专业学校",
    "农业技术推广中心",
    "疾病预防控制中心",
    "社会保险事业中心",
    "畜牧兽医站",
    "图书馆",
]
EMPLOYERS_PER_CITY = 300
PEOPLE_PER_EMPLOYER = 100
"""Units grow with the people (a unit employs about a hundred of them, from 300 per city up):
with a fixed number, a unit's file would grow with the history, which the real world's don't."""


def check_chars(bodies: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 check characters for 17-digit bodies given as int64."""
    powers = 10 ** np.arange(16, -1, -1, dtype=np.int64)
    digits = (bodies[:, None] // powers) % 10
    return CHECK_CHARS[(digits @ ID_WEIGHTS) % 11]


def with_check(bodies: pd.Series) -> pd.Series:
    """17-digit strings completed by their check character (invalid variants reuse this)."""
    ints = bodies.astype("int64").to_numpy()
    return bodies.str.cat(pd.Series(check_chars(ints), index=bodies.index, dtype="str"))


def employers(rng: np.random.Generator, per_city: int = EMPLOYERS_PER_CITY) -> pd.DataFrame:
    """`per_city` employers per city: enterprises end in 公司 (docs/decisions.md R2)."""
    frames = []
    for city in CITIES:
        short = CITY_NAMES[city]
        prefixes = [f"{short}市", short, f"山东（{short}）"]
        firms = [
            f"{p}{b}{t}{i}{f}"
            for p, b, t, i, f in itertools.product(
                prefixes, _BRANDS[city], _BRAND_TAILS, _INDUSTRIES, _FORMS
            )
        ]
        public = [
            f"{short}市{d}{k}" for d, k in itertools.product(_DISTRICTS[city], _INSTITUTIONS)
        ] + [
            f"{short}市{d}{k}（{short}市{k}分部）"
            for d, k in itertools.product(_DISTRICTS[city][:2], _INSTITUTIONS[:4])
        ]
        n_public = min(len(public), per_city * 2 // 5)
        chosen_firms = rng.choice(firms, per_city - n_public, replace=False)
        chosen_public = rng.choice(public, n_public, replace=False)
        names = np.concatenate([chosen_firms, chosen_public])
        frames.append(pd.DataFrame({"city": city, "employer": names}))
    frame = pd.concat(frames, ignore_index=True).astype("str")
    frame["employer_type"] = np.where(
        frame["employer"].str.endswith("公司"), "enterprise", "institution"
    )
    return frame


def _names(rng: np.random.Generator, kinds: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Canonical (C2-clean) names and a conflicting alternative spelling for each person."""
    n = len(kinds)
    surname_p = np.ones(len(SURNAMES))
    surname_p[-4:] = 0.2
    surname = rng.choice(SURNAMES, n, p=surname_p / surname_p.sum())
    surname = np.where(kinds == YU, "於", surname)  # C2: a traditional surname stays as given
    first = rng.choice(GIVEN, n)
    second = np.where(rng.random(n) < 0.7, rng.choice(GIVEN, n), "")
    first = np.where(kinds == GBK_RARE, rng.choice(GBK_RARE_CHARS, n), first)
    first = np.where(kinds == RARE, rng.choice(RARE_CHARS, n), first)
    han = np.char.add(np.char.add(surname, first), second)
    dotted = np.char.add(
        np.char.add(rng.choice(DOT_FIRST, n), MIDDLE_DOT), rng.choice(DOT_SECOND, n)
    )
    names = pd.Series(np.where(kinds == DOT, dotted, han), dtype="str")
    last = names.str[-1].to_numpy(dtype=str)
    replacement = rng.choice(GIVEN, n)
    replacement = np.where(replacement == last, "鑫", replacement)
    replacement = np.where(replacement == last, "磊", replacement)
    alt = names.str[:-1].str.cat(pd.Series(replacement, dtype="str"))
    return names, alt


def make_people(rng: np.random.Generator, wanted: pd.DataFrame) -> pd.DataFrame:
    """One person per row of `wanted` (columns: city, kind, employer_type, region, birth_year,
    check), honouring the constraints given and drawing the rest.

    `check` is "" (any), "digit" (a numeric spreadsheet cell can hold it) or "X". IDs are unique
    and never end in "000" (which reads like a spreadsheet-mangled number).
    """
    n = len(wanted)
    city = wanted["city"].to_numpy(dtype=str)
    region = np.empty(n, dtype=object)
    for name in CITIES:
        mask = city == name
        region[mask] = rng.choice(REGIONS[name], int(mask.sum()))
    forced_region = wanted["region"].fillna("").to_numpy(dtype=str)
    region = np.where(forced_region != "", forced_region, region.astype(str))

    span = int((BIRTH_LAST - BIRTH_FIRST).astype(int)) + 1
    birth = BIRTH_FIRST + rng.integers(0, span, n).astype("timedelta64[D]")
    forced_year = wanted["birth_year"].astype("Int64")
    year_start = pd.to_datetime(forced_year.astype("str") + "-01-01", errors="coerce")
    in_year = year_start.to_numpy(dtype="datetime64[D]") + rng.integers(0, 365, n).astype(
        "timedelta64[D]"
    )
    birth = np.where(forced_year.notna().to_numpy(), in_year, birth)

    ymd = pd.Series(birth).dt.strftime("%Y%m%d").astype("int64").to_numpy()
    seq = rng.integers(0, 1000, n)
    prefix = region.astype(np.int64) * 10**11 + ymd * 1000
    check = wanted["check"].fillna("").to_numpy(dtype=str)
    ids = _unique_ids(prefix, seq, check)

    per_city = max(EMPLOYERS_PER_CITY, round(n / len(CITIES) / PEOPLE_PER_EMPLOYER))
    employer_table = employers(rng, per_city)
    employer = np.empty(n, dtype=object)
    employer_type = np.empty(n, dtype=object)
    wanted_type = wanted["employer_type"].fillna("").to_numpy(dtype=str)
    for name in CITIES:
        for kind in ("", "enterprise", "institution"):
            mask = (city == name) & (wanted_type == kind)
            in_city = employer_table["city"] == name
            of_kind = employer_table["employer_type"] == kind if kind else in_city
            pool = employer_table[in_city & of_kind]
            picks = rng.integers(0, len(pool), int(mask.sum()))
            employer[mask] = pool["employer"].to_numpy()[picks]
            employer_type[mask] = pool["employer_type"].to_numpy()[picks]

    kinds = wanted["kind"].to_numpy(dtype=str)
    names, alt = _names(rng, kinds)
    gender = np.where(ids.str[16].astype("int64") % 2 == 1, "男", "女")
    return pd.DataFrame(
        {
            "id_number": ids,
            "name": names,
            "birth_date": pd.Series(birth).astype("datetime64[s]").dt.date,
            "gender": pd.Series(gender, dtype="str"),
            "city": pd.Series(city, dtype="str"),
            "employer": pd.Series(employer, dtype="str"),
            "employer_type": pd.Series(employer_type, dtype="str"),
            "kind": pd.Series(kinds, dtype="str"),
            "alt_name": alt,
        }
    )


def _unique_ids(prefix: np.ndarray, seq: np.ndarray, check: np.ndarray) -> pd.Series:
    """Bump sequence numbers (keeping their parity, i.e. gender) until every ID is acceptable."""
    seq = seq.copy()
    bodies = prefix + seq
    checks = check_chars(bodies)
    todo = np.arange(len(seq))
    while len(todo):
        bad = ((seq[todo] % 100 == 0) & (checks[todo] == "0")) | (
            (check[todo] == "digit") & (checks[todo] == "X")
        )
        bad |= (check[todo] == "X") & (checks[todo] != "X")
        duplicated = pd.Series(bodies).duplicated().to_numpy()
        todo = np.union1d(todo[bad], np.flatnonzero(duplicated))
        seq[todo] = (seq[todo] + 2) % 1000
        bodies[todo] = prefix[todo] + seq[todo]
        checks[todo] = check_chars(bodies[todo])
    return pd.Series(bodies.astype(str), dtype="str").str.cat(pd.Series(checks, dtype="str"))
