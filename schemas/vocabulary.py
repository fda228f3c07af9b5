"""The words every layer shares: subjects, employer types, the platforms' subject labels, and
the first year the pipeline knows."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

PUBLIC = "public"
PROFESSIONAL = "professional"
ENTERPRISE = "enterprise"
INSTITUTION = "institution"

FIRST_YEAR = 2017
"""R12: records from 2017 on (title checks reach back to 2017); the first year partition."""

DEFAULT_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "公需科目": PUBLIC,
        "公需课": PUBLIC,
        "公需": PUBLIC,
        "PUBLIC": PUBLIC,
        "专业科目": PROFESSIONAL,
        "专业课": PROFESSIONAL,
        "专业": PROFESSIONAL,
        "PROFESSIONAL": PROFESSIONAL,
        "乡村振兴": PROFESSIONAL,  # ningyang 二(二)
        "RURAL": PROFESSIONAL,
    }
)
"""R4: the platforms' subject labels and the subject each means."""
