"""Scenarios: small hand-written situations, one or more per rule, with their outcome beside them.

Each scenario has people of its own (so nothing else they do can interfere), stays inside one
pull year, and states for every record version the state, reason and hours RULES.md and
docs/decisions.md imply. This is the ground truth by construction: no rule is computed here.
A dataset holds every scenario `k` times over, each copy with new people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from sandbox.generator.people import DOT, GBK_RARE, HAN, RARE, TAIAN, YANTAI, YU
from sandbox.profiles import Catalogue
from schemas.raw import TZ
from schemas.vocabulary import DEFAULT_LABELS, PROFESSIONAL, PUBLIC

CREDITED, MERGED, NOT_CREDITED, QUARANTINED = "credited", "merged", "not_credited", "quarantined"
WITHDRAWN = "withdrawn"  # a version that removes its record from every output (D1)


@dataclass(frozen=True)
class Expect:
    """The outcome of a record version, were it the latest one."""

    state: str
    reason: str | None = None
    credited: float | None = None  # None: all reported hours when credited, else 0
    trimmed: float = 0.0
    merged_into: str | None = None  # the kept record's `rec` token
    year: int | None = None  # the credited year when it is not the completion year (R11)


OK = Expect(CREDITED)
R6 = Expect(NOT_CREDITED, "R6")
GONE = Expect(WITHDRAWN)


def quarantined(reason: str) -> Expect:
    return Expect(QUARANTINED, reason)


def cut(credited: float, trimmed: float) -> Expect:
    """R7: credited but trimmed by the daily cap."""
    return Expect(CREDITED, "R7", credited, trimmed)


def merged(rule: str, into: str) -> Expect:
    return Expect(MERGED, rule, merged_into=into)


def makeup_for(year: int) -> Expect:
    return Expect(CREDITED, year=year)


@dataclass(frozen=True)
class Want:
    """What a scenario needs of one of its people (see `people.make_people`)."""

    city: str
    kind: str = HAN
    employer_type: str | None = None
    region: str | None = None
    birth_year: int | None = None
    check: str | None = None


@dataclass(frozen=True)
class Row:
    """One version of one record; rows sharing `rec` are versions of one record, in order."""

    rec: str
    platform: str
    when: str | None  # completion, local time; None for an unfinished (spa 学习中) record
    expect: Expect = OK
    person: int = 0
    hours: float = 2.0
    wire: str | None = None  # the hours on the wire when `hours` cannot say it (invalid ones)
    subject: str = PUBLIC
    label: str | None = None  # overrides the catalogue's label (R4)
    title: str | None = None  # an explicit title (with `key`, its C3 key); else a catalogue course
    key: str | None = None
    passed: bool = True
    cert: str | None = ""  # "": its own certificate where the platform has them; else a token
    makeup: bool = False
    makeup_year: int | None = None
    updated: str | None = None  # update time (yx, treewises); default two hours after `when`
    start_year: int | None = None  # for unfinished records: the spa `year` they are listed in
    id_quirk: str = ""
    name_form: str = ""
    epoch: int = 0
    withdrawn: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    people: tuple[Want, ...]
    rows: tuple[Row, ...]


def _r1_rows() -> tuple[Row, ...]:
    """R1: 32 public + 64 professional in 2020 (compliant); 50 + 40 in 2021 (total 90, short)."""
    plan = [
        *[("ta_yx", PUBLIC, 8.0)] * 2,
        *[("ta_zjp", PUBLIC, 8.0)] * 2,
        *[("ta_yx", PROFESSIONAL, 8.0)] * 3,
        *[("ta_zjp", PROFESSIONAL, 8.0)] * 2,
        ("ta_tyjrp", PROFESSIONAL, 8.0),
        *[("ta_sdty", PROFESSIONAL, 8.0)] * 2,
    ]
    later = [
        *[("ta_yx", PUBLIC, 8.0)] * 3,
        *[("ta_sdty", PUBLIC, 8.0)] * 3,
        ("ta_zjp", PUBLIC, 2.0),
        *[("ta_yx", PROFESSIONAL, 8.0)] * 3,
        *[("ta_zjp", PROFESSIONAL, 8.0)] * 2,
    ]
    rows = [
        Row(
            f"a{i}", p, f"2020-{1 + i // 2:02d}-{5 + 10 * (i % 2):02d} 09:00:00", hours=h, subject=s
        )
        for i, (p, s, h) in enumerate(plan)
    ]
    rows += [
        Row(
            f"b{i}", p, f"2021-{1 + i // 2:02d}-{6 + 10 * (i % 2):02d} 09:00:00", hours=h, subject=s
        )
        for i, (p, s, h) in enumerate(later)
    ]
    return tuple(rows)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "R4 unknown labels",
        (Want(TAIAN), Want(YANTAI)),
        (
            Row(
                "a", "ta_yx", "2019-05-10 10:00:00", quarantined("unknown_category"), label="选修课"
            ),
            Row(
                "b",
                "ta_sdty",
                "2019-06-11 15:00:00",
                quarantined("unknown_category"),
                label="OTHER",
            ),
            Row("c", "ta_zjp", "2019-07-12", quarantined("unknown_category"), label="选修课"),
            Row("d", "ta_yx", "2019-08-13 09:00:00"),
            Row("e", "yt_naas", "2020-04-04", quarantined("unknown_category"), 1, label="其他"),
            Row("f", "yt_ytec", "2020-05-05", quarantined("unknown_category"), 1, label="选修"),
            Row("g", "yt_ytu", "2020-06-06", quarantined("unknown_category"), 1, label="选修科目"),
        ),
    ),
    Scenario(
        "R6 failed and unfinished",
        (Want(TAIAN), Want(YANTAI)),
        (
            Row("a", "ta_yx", "2020-03-03 10:00:00", R6, passed=False, cert=None),
            Row("b", "ta_zjp", "2020-04-04", R6, passed=False, cert=None),
            Row("c", "ta_tyjrp", "2020-05-05 14:00:00", R6, passed=False, cert=None),
            Row("d", "ta_sdty", "2020-06-06 11:00:00", R6, passed=False, cert=None),
            Row("e", "ta_yx", "2020-07-07 10:00:00"),
            Row("f", "yt_ytu", "2021-03-03", R6, 1, passed=False, cert=None),
            Row("g", "yt_naas", None, R6, 1, passed=False, start_year=2021, subject=PROFESSIONAL),
            Row("h", "yt_samet", None, R6, 1, passed=False, start_year=2022, subject=PROFESSIONAL),
            Row("i", "yt_sdbc", "2021-05-05", R6, 1, passed=False, cert=None),
        ),
    ),
    Scenario(
        "R7 twelve hours on one platform",
        (Want(TAIAN),),
        (
            Row("a", "ta_yx", "2021-04-12 08:30:00", OK, hours=5.0),
            Row("b", "ta_yx", "2021-04-12 13:00:00", cut(3.0, 1.0), hours=4.0),
            Row("c", "ta_yx", "2021-04-12 19:00:00", cut(0.0, 3.0), hours=3.0),
        ),
    ),
    Scenario(
        "R7 one day across platforms",
        (Want(YANTAI), Want(TAIAN)),
        (
            Row("a", "yt_sdbc", "2020-09-09", OK, hours=3.0),
            Row("b", "yt_ytu", "2020-09-09", OK, hours=4.0),
            Row("c", "yt_ldu", "2020-09-09 09:00:00", cut(1.0, 5.0), hours=6.0),
            Row("d", "ta_zjp", "2021-10-10", OK, 1, hours=1.5),
            Row("e", "ta_tyjrp", "2021-10-10 09:00:00", OK, 1, hours=6.0),
            Row("f", "ta_sdty", "2021-10-10 16:00:00", cut(0.5, 3.5), 1, hours=4.0),
        ),
    ),
    Scenario(
        "R11 makeup on Tai'an platforms",
        (Want(TAIAN),),
        (
            Row(
                "a", "ta_yx", "2022-03-01 10:00:00", makeup_for(2018), makeup=True, makeup_year=2018
            ),
            Row("b", "ta_zjp", "2022-03-15", makeup_for(2019), makeup=True, makeup_year=2019),
            Row(
                "c",
                "ta_tyjrp",
                "2022-04-02 14:00:00",
                makeup_for(2020),
                hours=4.0,
                makeup=True,
                makeup_year=2020,
            ),
            Row(
                "d",
                "ta_sdty",
                "2022-05-06 10:00:00",
                makeup_for(2021),
                hours=2.5,
                makeup=True,
                makeup_year=2021,
            ),
            Row("e", "ta_yx", "2022-06-01 09:00:00"),
        ),
    ),
    Scenario(
        "R11 invalid makeup",
        (Want(YANTAI), Want(TAIAN)),
        (
            Row(
                "a",
                "yt_ldu",
                "2022-06-01 10:00:00",
                quarantined("invalid_makeup"),
                makeup=True,
                makeup_year=2019,
            ),
            Row(
                "b",
                "yt_sdbc",
                "2022-06-15",
                quarantined("invalid_makeup"),
                makeup=True,
                makeup_year=2020,
            ),
            Row(
                "c",
                "ta_zjp",
                "2022-07-01",
                quarantined("invalid_makeup"),
                1,
                makeup=True,
                makeup_year=2016,
            ),
            Row(
                "d",
                "ta_yx",
                "2022-07-15 10:00:00",
                quarantined("invalid_makeup"),
                1,
                makeup=True,
                makeup_year=2022,
            ),
            Row(
                "e",
                "ta_tyjrp",
                "2022-08-01 10:00:00",
                quarantined("invalid_makeup"),
                1,
                makeup=True,
            ),
            Row(
                "f",
                "ta_sdty",
                "2022-08-15 10:00:00",
                quarantined("invalid_makeup"),
                1,
                hours=0.0,
                makeup=True,
                makeup_year=2016,
            ),
        ),
    ),
    Scenario(
        "R12 dates out of range",
        (Want(TAIAN),),
        (
            Row(
                "a",
                "ta_yx",
                "2016-12-20 10:00:00",
                quarantined("out_of_range_date"),
                updated="2017-01-05 09:00:00",
            ),
            Row(
                "b",
                "ta_sdty",
                "2202-05-03 10:00:00",
                quarantined("out_of_range_date"),
                updated="2022-05-04 10:00:00",
            ),
            Row("c", "ta_yx", "2017-03-03 10:00:00"),
        ),
    ),
    Scenario(
        "R13 hours sanity",
        (Want(TAIAN), Want(YANTAI)),
        (
            Row("a", "ta_yx", "2019-03-03 10:00:00", quarantined("invalid_hours"), hours=0.0),
            Row("b", "ta_zjp", "2019-04-04", quarantined("invalid_hours"), hours=-2.0, wire="-2"),
            Row(
                "c",
                "ta_sdty",
                "2019-05-05 10:00:00",
                quarantined("invalid_hours"),
                hours=1.25,
                wire="1.25",
            ),
            Row("d", "ta_zjp", "2019-06-06", OK, hours=1.5),
            Row("e", "ta_tyjrp", "2019-07-07 10:00:00", quarantined("invalid_hours"), hours=0.0),
            Row(
                "f",
                "yt_ytu",
                "2019-03-03",
                quarantined("invalid_hours"),
                1,
                hours=150.0,
                wire="150",
            ),
            Row(
                "g",
                "yt_ytec",
                "2019-04-04",
                quarantined("invalid_hours"),
                1,
                hours=float("nan"),
                wire="abc学时",
            ),
            Row("h", "yt_ldu", "2019-06-06 10:00:00", OK, 1, hours=1.5),
        ),
    ),
    Scenario(
        "C1 invalid ID numbers",
        (Want(TAIAN, check="digit"), Want(YANTAI, birth_year=1985)),
        (
            Row(
                "a",
                "ta_yx",
                "2018-03-03 10:00:00",
                quarantined("invalid_id_number"),
                id_quirk="bad_check",
            ),
            Row(
                "b",
                "ta_tyjrp",
                "2018-04-04 10:00:00",
                quarantined("id_number_corrupted"),
                id_quirk="numeric",
            ),
            Row(
                "c",
                "ta_zjp",
                "2018-05-05",
                quarantined("invalid_id_number"),
                label="选修课",
                id_quirk="bad_check",
            ),
            Row("d", "ta_sdty", "2018-06-06 10:00:00"),
            Row(
                "e",
                "yt_ldu",
                "2018-03-03 10:00:00",
                quarantined("invalid_id_number"),
                1,
                id_quirk="bad_birth",
            ),
            Row(
                "f",
                "yt_naas",
                "2018-04-04",
                quarantined("invalid_id_number"),
                1,
                id_quirk="bad_province",
            ),
            Row("g", "yt_ytu", "2018-05-05", OK, 1),
        ),
    ),
    Scenario(
        "C1 valid ID forms",
        (
            Want(TAIAN, region="370921", birth_year=1975),
            Want(TAIAN, check="X"),
            Want(YANTAI, birth_year=1990),
        ),
        (
            Row("a", "ta_yx", "2019-09-09 10:00:00"),
            Row("b", "ta_zjp", "2019-10-10", id_quirk="quote"),
            Row("c", "ta_tyjrp", "2019-11-11 10:00:00", id_quirk="fifteen"),
            Row("d", "ta_sdty", "2019-12-12 10:00:00", id_quirk="fullwidth"),
            Row("e", "ta_zjp", "2019-12-20", id_quirk="tab"),
            Row("f", "ta_yx", "2020-02-02 10:00:00", OK, 1, id_quirk="lower_x"),
            Row("g", "ta_zjp", "2020-03-03", OK, 1, id_quirk="wrap"),
            Row("h", "ta_sdty", "2020-04-04 10:00:00", OK, 1, id_quirk="space"),
            Row("i", "yt_ytu", "2020-05-05", OK, 2, id_quirk="zero_width"),
            Row("j", "yt_ytec", "2020-06-06", OK, 2, id_quirk="wrap"),
            Row("k", "yt_naas", "2020-07-07", OK, 2, id_quirk="fullwidth"),
            Row("l", "yt_ldu", "2020-08-08 10:00:00", OK, 2, id_quirk="fifteen"),
        ),
    ),
    Scenario(
        "C2 names",
        (
            Want(TAIAN, kind=DOT),
            Want(TAIAN),
            Want(YANTAI, kind=RARE),
            Want(TAIAN, kind=GBK_RARE),
            Want(YANTAI),
            Want(TAIAN, kind=YU),
        ),
        (
            Row("a", "ta_yx", "2021-05-01 10:00:00", name_form="dot:•"),
            Row("b", "ta_zjp", "2021-05-02", name_form="dot:．"),
            Row("c", "ta_sdty", "2021-05-03 10:00:00", name_form="dot:・"),
            Row("d", "ta_tyjrp", "2021-05-04 10:00:00", name_form="dot:."),
            Row("e", "ta_yx", "2021-06-01 10:00:00", OK, 1, name_form="space"),
            Row("f", "ta_zjp", "2021-06-02", OK, 1),
            Row("g", "yt_ldu", "2021-07-01 10:00:00", OK, 2),
            Row("h", "yt_ytec", "2021-07-02", OK, 2),
            Row("i", "ta_zjp", "2021-08-01", OK, 3),
            Row("j", "yt_ldu", "2021-09-01 10:00:00", OK, 4),
            Row("k", "yt_ytu", "2021-09-20", OK, 4, name_form="alt"),
            Row("l", "ta_yx", "2021-10-01 10:00:00", OK, 5),
        ),
    ),
    Scenario(
        "D2 same certificate",
        (Want(TAIAN), Want(YANTAI)),
        (
            Row("a", "ta_yx", "2020-03-05 10:00:00", OK, hours=3.0, cert="S"),
            Row("b", "ta_zjp", "2020-06-10", merged("D2", "a"), hours=3.0, cert="S"),
            Row("c", "ta_sdty", "2020-08-08 10:00:00", merged("D2", "a"), hours=3.0, cert="S"),
            Row("d", "yt_sdbc", "2021-07-07", OK, 1, cert="T"),
            Row("e", "yt_ytu", "2021-07-07", merged("D2", "d"), 1, cert="T"),
        ),
    ),
    Scenario(
        "D3 same course in one year",
        (Want(TAIAN), Want(YANTAI)),
        (
            Row(
                "a",
                "ta_yx",
                "2021-04-01 10:00:00",
                OK,
                hours=3.0,
                title="【2021】数字化转型与创新",
                key="数字化转型与创新",
            ),
            Row(
                "b",
                "ta_sdty",
                "2021-09-01 10:00:00",
                merged("D3", "a"),
                hours=3.0,
                title="数字化转型与创新",
                key="数字化转型与创新",
            ),
            Row(
                "c",
                "ta_zjp",
                "2021-02-02",
                R6,
                passed=False,
                cert=None,
                title="区块链技术应用",
                key="区块链技术应用",
            ),
            Row(
                "d",
                "ta_yx",
                "2021-03-03 10:00:00",
                OK,
                title="区块链技术应用",
                key="区块链技术应用",
            ),
            Row(
                "e",
                "yt_ldu",
                "2020-05-05 10:00:00",
                OK,
                1,
                subject=PROFESSIONAL,
                title="Python数据分析实务",
                key="python数据分析实务",
            ),
            Row(
                "f",
                "yt_ytec",
                "2020-08-08",
                merged("D3", "e"),
                1,
                subject=PROFESSIONAL,
                title="PYTHON数据分析\u3000实务",
                key="python数据分析实务",
            ),
            Row("g", "yt_ytu", "2019-04-04", OK, 1, title="人工智能通识", key="人工智能通识"),
            Row("h", "yt_sdbc", "2020-04-04", OK, 1, title="人工智能通识", key="人工智能通识"),
            Row(
                "i",
                "yt_ldu",
                "2019-10-10 10:00:00",
                OK,
                1,
                subject=PROFESSIONAL,
                title="人工智能通识",
                key="人工智能通识",
            ),
        ),
    ),
    Scenario(
        "D1 newer versions",
        (Want(TAIAN), Want(YANTAI)),
        (
            Row(
                "a",
                "ta_yx",
                "2021-06-01 09:00:00",
                R6,
                passed=False,
                cert=None,
                updated="2021-06-01 12:00:00",
            ),
            Row("a", "ta_yx", "2021-06-01 09:00:00", OK, updated="2021-06-03 09:00:00"),
            Row("b", "ta_yx", "2021-07-01 09:00:00", OK, cert=None, updated="2021-07-01 11:00:00"),
            Row("b", "ta_yx", "2021-07-01 09:00:00", OK, updated="2021-07-05 11:00:00"),
            Row(
                "c",
                "yt_ldu",
                "2020-06-01 09:00:00",
                R6,
                1,
                passed=False,
                cert=None,
                updated="2020-06-01 12:00:00",
            ),
            Row("c", "yt_ldu", "2020-06-01 09:00:00", OK, 1, updated="2020-06-02 09:00:00"),
        ),
    ),
    Scenario(
        "epoch 1 changes in 2022",
        (Want(TAIAN), Want(YANTAI)),
        (
            Row(
                "a",
                "ta_yx",
                "2022-11-01 10:00:00",
                R6,
                passed=False,
                cert=None,
                updated="2022-11-01 12:00:00",
            ),
            Row("a", "ta_yx", "2022-11-01 10:00:00", OK, updated="2022-12-31 23:30:00", epoch=1),
            Row("b", "ta_sdty", "2022-10-10 10:00:00", OK, updated="2022-10-11 10:00:00"),
            Row(
                "b",
                "ta_sdty",
                "2022-10-10 10:00:00",
                GONE,
                updated="2022-12-31 23:40:00",
                epoch=1,
                withdrawn=True,
            ),
            Row("c", "ta_zjp", "2022-12-05", OK, epoch=1),
            Row("d", "ta_yx", "2022-09-09 10:00:00"),
            Row("e", "yt_ytec", "2022-09-09", OK, 1),
            Row("e", "yt_ytec", "2022-09-09", GONE, 1, epoch=1, withdrawn=True),
            Row("f", "yt_ytu", "2022-10-10", OK, 1),
        ),
    ),
    Scenario(
        "R2 Tai'an enterprises in 2022",
        (
            Want(TAIAN, employer_type="enterprise"),
            Want(TAIAN, employer_type="institution"),
            Want(YANTAI, employer_type="enterprise"),
        ),
        (
            Row("a", "ta_yx", "2021-03-03 10:00:00", hours=3.0),
            Row("b", "ta_zjp", "2021-04-04", hours=4.0, subject=PROFESSIONAL),
            Row("c", "ta_yx", "2022-03-03 10:00:00", hours=3.0),
            Row("d", "ta_zjp", "2022-04-04", hours=4.0, subject=PROFESSIONAL),
            Row("e", "ta_yx", "2022-05-05 10:00:00", OK, 1),
            Row("f", "ta_sdty", "2022-06-06 10:00:00", OK, 1, hours=3.0),
            Row("g", "yt_ldu", "2022-05-05 10:00:00", OK, 2),
        ),
    ),
    Scenario("R1 annual requirement", (Want(TAIAN, employer_type="institution"),), _r1_rows()),
)


def copies(records: int) -> int:
    """How many times each scenario appears: once up to 2,000 records, then proportionally."""
    return max(1, records // 2_000)


def _template(
    scenario: Scenario,
    courses: pd.DataFrame,
    pools: dict[tuple[str, str], np.ndarray],
    platforms: Catalogue,
) -> pd.DataFrame:
    """One copy of a scenario as spec rows, with person and record numbers local to it."""
    rows = pd.DataFrame([asdict(r) | {"expect": None} for r in scenario.rows])
    expects = [r.expect for r in scenario.rows]
    profiles = [platforms[code] for code in rows["platform"]]

    def fact(name: str) -> pd.Series:
        return pd.Series([getattr(p.facts, name) for p in profiles], index=rows.index)

    recs = list(dict.fromkeys(rows["rec"]))
    rows["rec_local"] = rows["rec"].map({r: i for i, r in enumerate(recs)})
    rows["version"] = rows.groupby("rec").cumcount()

    picked = rows.drop_duplicates("rec").loc[lambda f: f["title"].isna()]
    ordinal = picked.groupby(["platform", "subject"]).cumcount()
    course_rows = {
        rec: int(pools[platform, subject][n])
        for (rec, platform, subject), n in zip(
            picked[["rec", "platform", "subject"]].itertuples(index=False), ordinal, strict=True
        )
    }
    labels = rows["rec"].map(course_rows).fillna(-1).astype("int64")
    course = courses.reindex(labels.to_numpy()).reset_index(drop=True)
    explicit = rows["title"].notna()
    fielded = pd.Series([bool(p.field_labels) for p in profiles], index=rows.index)
    default_label = [p.label(s) for p, s in zip(profiles, rows["subject"], strict=True)]
    label = np.where(explicit, default_label, course["category_label"])
    rows["category_label"] = rows["label"].where(rows["label"].notna(), label)
    known = rows["category_label"].isin(list(DEFAULT_LABELS)) | fielded
    rows["subject_truth"] = rows["subject"].where(known)
    rows["course_title"] = rows["title"].where(explicit, course["course_title"])
    rows["course_key"] = rows["key"].where(explicit, course["course_key"])
    code = rows["platform"].str.upper() + "-X" + rows["rec_local"].astype("str").str.zfill(3)
    coded = fact("course_codes")
    rows["course_code"] = code.where(explicit & coded, course["course_code"].where(~explicit))
    fields = [p.facts.wire_fields[0] if p.facts.wire_fields else None for p in profiles]
    first_field = pd.Series(fields, index=rows.index)  # an explicit course's specialty field
    rows["wire_field"] = np.where(
        first_field.notna(), course["wire_field"].where(~explicit, first_field), None
    )

    when = pd.to_datetime(rows["when"], format="ISO8601").dt.tz_localize(TZ)
    timed = fact("timed")
    rows["completed_at"] = when.where(timed, when.dt.normalize())
    updated = pd.to_datetime(rows["updated"], format="ISO8601").dt.tz_localize(TZ)
    default_update = rows["completed_at"] + pd.Timedelta(hours=2)
    updating = fact("updating")
    rows["updated_at"] = updated.fillna(default_update).where(updating)
    rows["start_year"] = rows["start_year"].fillna(rows["completed_at"].dt.year).astype("int64")

    minutes = np.round(rows["hours"].fillna(0) * 45)
    rows["minutes"] = np.where(fact("hours") == "minutes", minutes, 0).astype("int64")
    rows["wire_hours"] = rows["wire"]
    scores = fact("score_pair")
    rows["score"] = np.where(rows["passed"], scores.str[0], scores.str[1])
    rows["score"] = rows["score"].where(rows["completed_at"].notna())
    has_certificates = fact("certificates")
    token = rows["cert"].where(rows["cert"] != "", rows["rec"].str.upper())
    rows["cert_token"] = token.where(has_certificates & rows["cert"].notna())
    rows["makeup_year"] = rows["makeup_year"].astype("Int64")

    state = [e.state for e in expects]
    rows["t_state"] = [None if s == WITHDRAWN else s for s in state]
    rows["t_reason"] = [e.reason for e in expects]
    rows["t_credited"] = [
        (e.credited if e.credited is not None else h) if e.state == CREDITED else 0.0
        for e, h in zip(expects, rows["hours"], strict=True)
    ]
    rows["t_trimmed"] = [e.trimmed for e in expects]
    counted = rows["t_state"].notna() & (rows["t_state"] != QUARANTINED)
    dated = rows["completed_at"].notna() & counted
    own_year = rows["completed_at"].dt.year.astype("Int64").where(dated)
    forced = pd.array([e.year for e in expects], dtype="Int64")
    rows["t_year"] = pd.Series(forced).fillna(own_year).astype("Int64")
    rows["t_merged_local"] = pd.array(
        [recs.index(e.merged_into) if e.merged_into else None for e in expects], dtype="Int64"
    )
    return rows.drop(
        columns=["expect", "when", "updated", "label", "title", "key", "subject", "wire", "cert"]
    ).rename(columns={"subject_truth": "subject"})


def expand(
    courses: pd.DataFrame, k: int, platforms: Catalogue
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every scenario `k` times: the people they need and their spec rows. A scenario on a
    platform the catalogue lacks is left out.

    Spec rows carry `person` (into the returned people constraints) and `rec` (a record number
    local to the returned rows), `t_merged_rec` in the same numbering.
    """
    wants, specs = [], []
    person_base = rec_base = 0
    by_course = courses.sort_values("ordinal").groupby(["platform", "subject"])
    pools = {key: group.index.to_numpy() for key, group in by_course}
    for index, scenario in enumerate(SCENARIOS):
        if any(row.platform not in platforms.specs for row in scenario.rows):
            continue
        template = _template(scenario, courses, pools, platforms)
        m, n_people, n_recs = (
            len(template),
            len(scenario.people),
            int(template["rec_local"].max()) + 1,
        )
        copy = np.repeat(np.arange(k), m)
        spec = template.iloc[np.tile(np.arange(m), k)].reset_index(drop=True)
        spec["person"] = person_base + copy * n_people + spec["person"].to_numpy()
        spec["rec"] = rec_base + copy * n_recs + spec["rec_local"].to_numpy()
        spec["t_merged_rec"] = rec_base + copy * n_recs + spec["t_merged_local"]
        serial = pd.Series(copy).astype("str").str.zfill(6)
        spec["certificate_no"] = f"ZS{index:02d}" + serial + spec["cert_token"]
        spec["cert_serial"] = -1
        specs.append(spec.drop(columns=["rec_local", "t_merged_local", "cert_token"]))
        people = pd.DataFrame([asdict(w) for w in scenario.people])
        wants.append(people.iloc[np.tile(np.arange(n_people), k)])
        person_base += k * n_people
        rec_base += k * n_recs
    want = pd.concat(wants, ignore_index=True)
    want["birth_year"] = want["birth_year"].astype("Int64")
    return want, pd.concat(specs, ignore_index=True)
