"""Platform specs: one TOML file per platform, `[platform]` its identity, `[options]` its wire."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from types import MappingProxyType

from connectors.core import PlatformSpec


@cache
def load_specs() -> MappingProxyType[str, PlatformSpec]:
    """Every spec in this folder, by platform code, in file-name order."""
    specs: dict[str, PlatformSpec] = {}
    for entry in sorted(resources.files(__package__).iterdir(), key=lambda e: e.name):
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
