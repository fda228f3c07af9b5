"""The platform catalogue every layer shares: one TOML spec per platform in `schemas/specs/`,
`[platform]` its identity, `[options]` its wire (read by the family's engine).

Each family's options have a model (`OPTIONS`), checked when the specs load: a misspelt or
missing key, a wrong type or a field mapped to no raw column fails at start-up, naming the
file and the key, not in the middle of a pull.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from schemas.raw import RAW_DTYPES


class SpecError(ValueError):
    """A platform spec that does not say what its family needs."""


class _Options(BaseModel):
    """Options every family has: the wire-to-raw field map and how times are written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, str]
    """Wire field or column → raw column."""
    time_format: str

    @field_validator("fields")
    @classmethod
    def _raw_columns(cls, fields: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(fields.values()) - set(RAW_DTYPES))
        if unknown:
            raise ValueError(f"not raw columns: {', '.join(unknown)}")
        return fields


class _Decoded(_Options):
    """Options of the families whose text cells `connectors.decode.map_fields` reads."""

    passed_values: list[str] = []
    makeup_values: list[str] = []
    makeup_from_year: bool = False
    always_passed: bool = False
    hours_pattern: str | None = None
    hours_divisor: float | None = None
    hours_decimals: int | None = None


class _Windowed(_Decoded):
    lookback_days: int


class TreewisesOptions(_Options):
    records_path: str
    tenant: str
    page_size: int
    makeup_field: str | None = None
    value_maps: dict[str, dict[str, Any]] = {}
    extra_fields: list[str] = []


class YxOptions(_Options):
    token_path: str
    records_path: str
    page_size: int
    expired_codes: list[int]
    busy_codes: list[int]
    makeup_field: str | None = None
    value_maps: dict[str, dict[str, Any]] = {}
    extra_fields: list[str] = []


class SpaOptions(_Options):
    login_path: str
    records_path: str
    page_size: int
    read_attempts: int
    makeup_field: str | None = None
    value_maps: dict[str, dict[str, Any]] = {}
    extra_fields: list[str] = []


class ZjpOptions(_Windowed):
    path: str
    key_header: str
    charset: str
    window_days: int
    totals_marker: str
    header: list[str]


class HuaxueOptions(_Decoded):
    path: str
    charset: str
    header: list[str]


class LllnetOptions(_Windowed):
    path: str
    max_pages: int


class TyjrpOptions(_Windowed):
    jobs_path: str
    job_attempts: int
    job_months: int
    poll_initial: float
    poll_max: float
    poll_timeout: float
    sheet: str
    id_column: str
    time_column: str


OPTIONS: Mapping[str, type[_Options]] = MappingProxyType(
    {
        "treewises": TreewisesOptions,
        "yx": YxOptions,
        "spa": SpaOptions,
        "zjp": ZjpOptions,
        "huaxue": HuaxueOptions,
        "lllnet": LllnetOptions,
        "tyjrp": TyjrpOptions,
    }
)
"""Each protocol family's options model."""


@dataclass(frozen=True)
class PlatformSpec:
    """A platform's declarative spec, loaded from `schemas/specs/<code>.toml`."""

    code: str
    organizer: str
    city: str
    family: str
    options: Mapping[str, Any]
    """Family-specific settings (field map, label map, encoding, page size, quirks)."""


@cache
def load_specs() -> MappingProxyType[str, PlatformSpec]:
    """Every spec, by platform code, in file-name order."""
    specs: dict[str, PlatformSpec] = {}
    folder = resources.files(__package__) / "specs"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        spec = read_spec(entry.name, entry.read_text(encoding="utf-8"))
        if spec.code in specs or entry.name != f"{spec.code}.toml":
            raise SpecError(f"spec {entry.name}: file name must be its unique code")
        specs[spec.code] = spec
    return MappingProxyType(specs)


def read_spec(name: str, text: str) -> PlatformSpec:
    """One spec file's text, checked against its family's options model."""
    try:
        data = tomllib.loads(text)
        identity = data["platform"]
        family = identity["family"]
        model = OPTIONS[family]
    except (tomllib.TOMLDecodeError, KeyError) as exc:
        raise SpecError(
            f"spec {name}: {exc} (needs [platform] code, organizer, city, family "
            f"of {', '.join(OPTIONS)})"
        ) from exc
    try:
        options = model.model_validate(data.get("options", {}))
    except ValidationError as exc:
        problems = "; ".join(
            f"options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"spec {name} (family {family}): {problems}") from exc
    return PlatformSpec(
        code=identity["code"],
        organizer=identity["organizer"],
        city=identity["city"],
        family=family,
        options=MappingProxyType(options.model_dump(exclude_none=True)),
    )


PLATFORMS: dict[str, PlatformSpec] = dict(load_specs())
PLATFORM_CODES: tuple[str, ...] = tuple(PLATFORMS)
FORMS = "forms"
"""The eleventh source: unit registration forms (FORMS.md), read from files, not a platform."""
SOURCE_CODES: tuple[str, ...] = (*PLATFORM_CODES, FORMS)
"""Every code a raw record's `platform` may hold."""
