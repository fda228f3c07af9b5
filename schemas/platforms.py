"""The platform catalogue every layer shares: one TOML spec per platform in `schemas/specs/`,
`[platform]` its identity, `[options]` its wire (read by the family's engine)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType
from typing import Any


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
        data = tomllib.loads(entry.read_text(encoding="utf-8"))
        identity = data["platform"]
        spec = PlatformSpec(
            code=identity["code"],
            organizer=identity["organizer"],
            city=identity["city"],
            family=identity["family"],
            options=MappingProxyType(data.get("options", {})),
        )
        if spec.code in specs or entry.name != f"{spec.code}.toml":
            raise ValueError(f"spec {entry.name}: file name must be its unique code")
        specs[spec.code] = spec
    return MappingProxyType(specs)


PLATFORMS: dict[str, PlatformSpec] = dict(load_specs())
PLATFORM_CODES: tuple[str, ...] = tuple(PLATFORMS)
FORMS = "forms"
"""The eleventh source: unit registration forms (FORMS.md), read from files, not a platform."""
SOURCE_CODES: tuple[str, ...] = (*PLATFORM_CODES, FORMS)
"""Every code a raw record's `platform` may hold."""
