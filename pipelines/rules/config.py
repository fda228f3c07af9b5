"""Every number and label map of RULES.md, in one place, with the notices' values as defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from schemas.vocabulary import DEFAULT_LABELS, ENTERPRISE, INSTITUTION

# R3 (yantai 六(一)): per employer type, the years whose public / professional hours a 2022
# title applicant needs met.
TITLE_PUBLIC_YEARS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {INSTITUTION: (2017, 2018, 2019, 2020, 2021), ENTERPRISE: (2019, 2020, 2021)}
)
TITLE_PROFESSIONAL_YEARS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {INSTITUTION: (2019, 2020, 2021), ENTERPRISE: (2020, 2021)}
)

# C1: the 34 province-level prefixes of GB/T 2260 (county codes are deliberately not checked).
PROVINCE_CODES: frozenset[str] = frozenset(
    [str(c) for c in (11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37)]
    + [str(c) for c in (41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65)]
    + ["71", "81", "82"]
)


@dataclass(frozen=True)
class RulesConfig:
    """RULES.md's numbers; change them here (or pass another instance), never in the rules."""

    public_required: float = 30.0  # R1
    professional_required: float = 60.0  # R1
    annual_required: float = 90.0  # R1
    enterprise_exempt_years: tuple[int, ...] = (2022,)  # R2
    enterprise_exempt_city: str = "taian"  # R2
    title_city: str = "yantai"  # R3
    title_public_years: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: TITLE_PUBLIC_YEARS
    )  # R3: employer type → years
    title_professional_years: Mapping[str, tuple[int, ...]] = field(
        default_factory=lambda: TITLE_PROFESSIONAL_YEARS
    )  # R3
    daily_cap: float = 8.0  # R7
    selfstudy_cap: float = 40.0  # R8 (unit registration forms, a later source)
    conversion_hours: float = 10.0  # R9
    conversion_cap: float = 30.0  # R9
    first_year: int = 2017  # R12
    makeup_first_year: int = 2018  # R11
    makeup_last_year: int = 2021  # R11
    makeup_cities: tuple[str, ...] = ("taian",)  # R11
    max_hours: float = 100.0  # R13
    hours_step: float = 0.1  # R13
    hours_step_tolerance: float = 1e-6  # R13, docs/decisions.md
    labels: Mapping[str, str] = field(default_factory=lambda: DEFAULT_LABELS)  # R4
    all_professional_platforms: tuple[str, ...] = ("yt_samet",)  # R4: field names as labels
    province_codes: frozenset[str] = PROVINCE_CODES  # C1
    min_birth_year: int = 1900  # C1
