"""What the sandbox knows of each protocol family's wire, in one place (issue 16).

The sandbox plays the platforms, so it keeps its own account of what they send instead of
reading the specs the connectors read (a wrong spec would otherwise pass its own tests). A
family's profile says what its wire carries and how it spells it; a platform differs from its
family only where `PLATFORM_PROFILES` says so, and its city and family come from its spec. A new
platform of a known family therefore needs its spec and at most one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

import numpy as np
import pandas as pd

from schemas.platforms import PLATFORMS, PlatformSpec
from schemas.vocabulary import PROFESSIONAL, PUBLIC

T = TypeVar("T")


@dataclass(frozen=True)
class Encoding:
    """How a text export is encoded: the codec, the charset it declares, a BOM or not."""

    codec: str
    charset: str
    bom: bool

    @property
    def gbk(self) -> bool:
        """Whether names must be spelt in GBK (a middle dot GBK has, no rare characters)."""
        return self.charset.upper() == "GBK"


UTF8_BOM = Encoding("utf-8", "utf-8", bom=True)
GBK = Encoding("gb18030", "GBK", bom=False)  # a GBK label over GB18030 bytes (rare names)


@dataclass(frozen=True)
class FamilyProfile:
    """One protocol family's wire as PLATFORMS.md describes it."""

    labels: Mapping[str, str]
    """The category label per subject (PUBLIC, PROFESSIONAL)."""
    rural_label: str | None = None
    """The 乡村振兴 label a fifth of the professional courses carry, where the wire has one."""
    timed: bool = False
    """Completions carry a time of day (else midnight)."""
    updating: bool = False
    """Records carry an update time, and are listed by it."""
    exam: bool = False
    """Records carry an exam result; some fail it."""
    unfinished: bool = False
    """Courses still in progress are listed too (spa 学习中): they are the ones not passed."""
    certificates: bool = False
    certificate_missing: float = 0.0
    """Share of passed records whose certificate is not (yet) issued."""
    scored: bool = False
    """Records carry a score."""
    score_missing: float = 0.0
    """Share of records whose score is not given."""
    score_pair: tuple[float, float] = (float("nan"), float("nan"))
    """The score of a scenario record that passed, and of one that did not."""
    course_codes: bool = False
    hours: str = "decimal"
    """How hours are written: `decimal` (2.0), `text` (1.5, 2), `minutes` (90), `xueshi` (3学时)."""
    record_ids: str = "natural"
    """`numbered` (yx recordId), `hashed` (treewises c_…), `listed` (spa ids by year), or
    `natural`: no id on the wire, the natural key (docs/decisions.md)."""
    revokes: bool = False
    """Withdrawn records stay listed, marked revoked."""
    snapshot: bool = False
    """Whole-year snapshots: a withdrawn record is simply absent."""
    shifting_pages: bool = False
    """Offset pages: records arriving while a pull pages shift the later pages."""
    id_quirks: Mapping[str, float] = field(default_factory=dict)
    """How often a base record's ID shows a (valid) quirk, by quirk (`wire.id_forms`)."""
    wire_fields: tuple[str, ...] = ()
    """The values of a course's specialty field (huaxue 所属领域)."""
    encoding: Encoding = UTF8_BOM
    """The encoding of a text export."""
    in_band_faults: tuple[str, ...] = ()
    """Faults signalled inside the protocol (`sandbox/faults.py`)."""


FAMILY_PROFILES: Mapping[str, FamilyProfile] = MappingProxyType(
    {
        "yx": FamilyProfile(
            labels={PUBLIC: "公需科目", PROFESSIONAL: "专业科目"},
            rural_label="乡村振兴",
            timed=True,
            updating=True,
            exam=True,
            certificates=True,
            certificate_missing=0.15,
            scored=True,
            score_pair=(85.0, 45.0),
            course_codes=True,
            record_ids="numbered",
            id_quirks={"fifteen": 0.03, "space": 0.02, "fullwidth": 0.02},
            in_band_faults=("expiry", "busy"),  # 40101 token expired, 50001 系统繁忙
        ),
        "zjp": FamilyProfile(
            labels={PUBLIC: "公需课", PROFESSIONAL: "专业课"},
            exam=True,
            certificates=True,
            hours="text",
            id_quirks={
                "quote": 0.08,
                "tab": 0.04,
                "wrap": 0.03,
                "fifteen": 0.03,
                "fullwidth": 0.02,
            },
        ),
        "tyjrp": FamilyProfile(
            labels={PUBLIC: "公需", PROFESSIONAL: "专业"},
            timed=True,
            exam=True,
            scored=True,
            score_pair=(78.0, 30.0),
            course_codes=True,
            hours="minutes",
            id_quirks={"fifteen": 0.03, "wrap": 0.02, "space": 0.02},
            in_band_faults=("job",),  # an export job ends `failed`
        ),
        "treewises": FamilyProfile(
            labels={PUBLIC: "PUBLIC", PROFESSIONAL: "PROFESSIONAL"},
            rural_label="RURAL",
            timed=True,
            updating=True,
            exam=True,
            certificates=True,
            course_codes=True,
            record_ids="hashed",
            revokes=True,
            id_quirks={"fifteen": 0.02, "space": 0.02, "zero_width": 0.01},
        ),
        "lllnet": FamilyProfile(
            labels={PUBLIC: "公需科目", PROFESSIONAL: "专业科目"},
            exam=True,
            certificates=True,
            hours="text",
            id_quirks={"fifteen": 0.03, "space": 0.03, "zero_width": 0.01},
            in_band_faults=("ts",),  # TS_EXPIRED on a fresh ts
        ),
        "spa": FamilyProfile(
            labels={PUBLIC: "公需", PROFESSIONAL: "乡村振兴"},
            unfinished=True,
            scored=True,
            score_missing=0.3,
            score_pair=(90.0, float("nan")),
            record_ids="listed",
            shifting_pages=True,
            id_quirks={"fifteen": 0.03, "fullwidth": 0.03, "space": 0.02},
            in_band_faults=("expiry",),  # 401 on a token that worked before
        ),
        "huaxue": FamilyProfile(
            labels={PUBLIC: "公需", PROFESSIONAL: "专业"},
            certificates=True,
            hours="xueshi",
            snapshot=True,
            id_quirks={"fifteen": 0.03, "wrap": 0.03, "fullwidth": 0.02},
            wire_fields=(
                "智能制造",
                "现代服务",
                "电子信息",
                "建筑工程",
                "财经商贸",
                "交通运输",
                "文化旅游",
            ),
        ),
    }
)


@dataclass(frozen=True)
class PlatformProfile:
    """Where one platform differs from its family; unset facts are derived from its spec."""

    weight: float | None = None
    """Percent of its city's learners; None: an equal share (its city's mean weight)."""
    cert_prefix: str | None = None
    """None: the code without its city part, upper-cased (`yt_ldu` → `LDU`)."""
    field_labels: tuple[str, ...] = ()
    """Category labels naming a field instead of a subject; all its courses are professional."""
    encoding: Encoding | None = None


PLATFORM_PROFILES: Mapping[str, PlatformProfile] = MappingProxyType(
    {  # PLATFORMS.md's order, which is the order the generator draws a city's platforms in
        "ta_yx": PlatformProfile(weight=35, cert_prefix="TAYX"),
        "ta_tyjrp": PlatformProfile(weight=20),
        "ta_zjp": PlatformProfile(weight=25, cert_prefix="TZJ", encoding=GBK),
        "ta_sdty": PlatformProfile(weight=20),
        "yt_ldu": PlatformProfile(weight=20),
        "yt_sdbc": PlatformProfile(weight=15),
        "yt_ytu": PlatformProfile(weight=20),
        "yt_naas": PlatformProfile(weight=15),
        "yt_samet": PlatformProfile(
            weight=15, field_labels=("工程技术", "机械制造", "电气自动化", "材料工程", "智能制造")
        ),
        "yt_ytec": PlatformProfile(weight=15),
    }
)


@dataclass(frozen=True)
class Profile:
    """One platform as the sandbox simulates it: its family's wire and its own differences."""

    code: str
    city: str
    family: str
    facts: FamilyProfile
    weight: float | None
    cert_prefix: str
    field_labels: tuple[str, ...]
    encoding: Encoding

    def label(self, subject: str) -> str:
        """The label a course of `subject` carries by default."""
        return self.field_labels[0] if self.field_labels else self.facts.labels[subject]


def profile_of(spec: PlatformSpec) -> Profile:
    """The platform's family profile with its own differences applied."""
    if spec.family not in FAMILY_PROFILES:
        raise KeyError(f"no sandbox profile for family {spec.family!r} (platform {spec.code})")
    facts = FAMILY_PROFILES[spec.family]
    own = PLATFORM_PROFILES.get(spec.code, PlatformProfile())
    return Profile(
        code=spec.code,
        city=spec.city,
        family=spec.family,
        facts=facts,
        weight=own.weight,
        cert_prefix=own.cert_prefix or spec.code.partition("_")[2].upper(),
        field_labels=own.field_labels,
        encoding=own.encoding or facts.encoding,
    )


class Catalogue:
    """The platforms a generated world and its sandbox hold, with their profiles; production's
    catalogue by default, a test's own (say, with an eleventh platform) when given."""

    def __init__(self, specs: Mapping[str, PlatformSpec] | None = None) -> None:
        self.specs: Mapping[str, PlatformSpec] = MappingProxyType(
            dict(PLATFORMS if specs is None else specs)
        )
        self.codes: tuple[str, ...] = tuple(self.specs)
        self.profiles: Mapping[str, Profile] = MappingProxyType(
            {code: profile_of(spec) for code, spec in self.specs.items()}
        )
        self.index = pd.Index(self.codes, dtype="str")

    def __getitem__(self, code: str) -> Profile:
        return self.profiles[code]

    def each(self, get: Callable[[Profile], T]) -> np.ndarray:
        """`get` of every platform, in catalogue order (index it with platform numbers)."""
        return np.array([get(self.profiles[code]) for code in self.codes])

    def fact(self, name: str) -> np.ndarray:
        """A family fact of every platform, in catalogue order."""
        return self.each(lambda p: getattr(p.facts, name))

    def weights(self, city: str) -> dict[str, float]:
        """Each of the city's platforms' share of its learners, in PLATFORMS.md's order and then
        the catalogue's (the order the generator draws them in)."""
        order = [*PLATFORM_PROFILES, *self.codes]
        codes = sorted((c for c in self.codes if self.profiles[c].city == city), key=order.index)
        given = [w for c in codes if (w := self.profiles[c].weight) is not None]
        default = sum(given) / len(given) if given else 1.0
        raw = np.array(
            [default if (w := self.profiles[c].weight) is None else w for c in codes], "float64"
        )
        return dict(zip(codes, (raw / raw.sum()).tolist(), strict=True))


PRODUCTION = Catalogue()
"""The production catalogue's profiles (`schemas.platforms.PLATFORMS`)."""
