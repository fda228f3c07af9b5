"""Great Expectations suites for the raw records, the completion ledger and the hours bank.

GX (1.x API) imports scipy and takes seconds to load, so it is imported inside the functions,
never at module level. Each run gets a fresh ephemeral context, because a context keeps every
result in memory. Checks that GX cannot express directly (the ID check character, conservation
of hours, compliance) are precomputed as boolean columns on a lean copy of the frame and
expected to be true: a custom expectation class silently vanishes from a suite loaded where its
module was not imported. Row-level failures come back as positions on a plain RangeIndex, mapped
to keys here; unexpected values are excluded so that no ID number reaches results or Data Docs
(RULES.md C6).
"""

from __future__ import annotations

from pipelines.validation.bank import HOURS_BANK_SUITE, validate_hours_bank
from pipelines.validation.core import (
    Validation,
    build_data_docs,
    combine,
    import_great_expectations,
    preload_great_expectations,
)
from pipelines.validation.ledger import (
    COMPLETION_SUITE,
    REASONS,
    id_check_valid,
    validate_completion,
)
from pipelines.validation.raw import RAW_SUITE, validate_raw

__all__ = [
    "COMPLETION_SUITE",
    "HOURS_BANK_SUITE",
    "RAW_SUITE",
    "REASONS",
    "Validation",
    "build_data_docs",
    "combine",
    "id_check_valid",
    "import_great_expectations",
    "preload_great_expectations",
    "validate_completion",
    "validate_hours_bank",
    "validate_raw",
]
