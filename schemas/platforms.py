"""The platform catalogue every layer shares, read from the connectors' specs (one place)."""

from __future__ import annotations

from connectors.core import PlatformSpec
from connectors.specs import load_specs

Platform = PlatformSpec
PLATFORMS: dict[str, PlatformSpec] = dict(load_specs())
PLATFORM_CODES: tuple[str, ...] = tuple(PLATFORMS)
FORMS = "forms"
"""The eleventh source: unit registration forms (FORMS.md), read from files, not a platform."""
SOURCE_CODES: tuple[str, ...] = (*PLATFORM_CODES, FORMS)
"""Every code a raw record's `platform` may hold."""
