"""The provincial import files (PROVINCIAL.md): per year, per employer, XLSX plus a manifest.

One module per concern: the import template, its headers and how ledger rows become its rows
(`template`, the one module to change when the real template is known); employer names as safe,
distinct file names (`names`); rows to workbook bytes (`xlsx`); crash-safe writes (`atomic`);
which files a run writes or keeps, and each year's `manifest.json` (`plan`).
"""

from __future__ import annotations

from pipelines.provincial.names import MAX_NAME_BYTES, file_stems, safe_name
from pipelines.provincial.plan import (
    LedgerFiles,
    Manifest,
    ProvincialFile,
    update_provincial,
    write_provincial,
    writer_version,
)
from pipelines.provincial.template import (
    HOURS_HEADER,
    LEARNERS_HEADER,
    LEDGER_COLUMNS,
    NUMERIC_COLUMNS,
    UNKNOWN_EMPLOYER,
    hours_rows,
    learner_rows,
)

__all__ = [
    "HOURS_HEADER",
    "LEARNERS_HEADER",
    "LEDGER_COLUMNS",
    "MAX_NAME_BYTES",
    "NUMERIC_COLUMNS",
    "UNKNOWN_EMPLOYER",
    "LedgerFiles",
    "Manifest",
    "ProvincialFile",
    "file_stems",
    "hours_rows",
    "learner_rows",
    "safe_name",
    "update_provincial",
    "write_provincial",
    "writer_version",
]
