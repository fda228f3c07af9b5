"""What each column means, in PROVINCIAL.md's words where it has them: Dagster's catalogue
shows these beside every asset's columns (`dagster/column_schema`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

COLUMN_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        # raw records (the connectors' schema, schemas/raw.py)
        "source_key": "the platform's record id, or a stable hash of its natural key",
        "raw_id": "the ID number as received (a numeric cell as the float's text)",
        "course_code": "the platform's course code; null where it has none",
        "category_label": "the platform's subject label, verbatim (R4 maps it)",
        "hours": "学时 after unit conversion; NaN when unparseable (R13)",
        "passed": "exam passed / 已完成 / 结业; false for 学习中 or 不合格",
        "score": "exam score, where the platform sends one",
        "makeup_year": "the year a 补学 record counts for, when given (R11)",
        "updated_at": "the platform's update time; null where it has none (D1)",
        "withdrawn": "tombstone, revocation, or gone from a full snapshot (D1)",
        "pulled_at": "when this version was pulled",
        "pull_year": "the pull window (year partition) that brought the record",
        "payload": "the record as received, JSON, for provenance",
        # the ledger (PROVINCIAL.md, `completion`)
        "record_key": "`platform:source_key`",
        "platform": "platform code from PLATFORMS.md (`forms` for unit registration forms)",
        "city": "`taian` or `yantai`",
        "id_number": "normalized 18-character ID, null when quarantined for it (C1)",
        "name": "cleaned (C2)",
        "employer": "cleaned (C3)",
        "course_title": "as shown",
        "course_key": "the D3 matching key",
        "subject": "`public` or `professional` (null when quarantined for R4)",
        "mode": "`training` for platform records (R5)",
        "completed_at": "timestamp, Asia/Shanghai",
        "credited_year": "the year the hours count for (R10 / R11)",
        "makeup": "true for 补学 records",
        "hours_reported": "学时 after unit conversion",
        "hours_credited": "学时 credited after R7",
        "hours_trimmed": "学时 cut by R7",
        "certificate_no": "certificate number, or null",
        "state": "`credited`, `merged`, `not_credited` or `quarantined` (D4)",
        "reason": "rule or quarantine code; null when simply credited",
        "merged_into": "`record_key` of the kept record when merged (D2, D3)",
        "first_seen_at": "first sync that saw the record",
        "last_seen_at": "last sync that saw the record",
        # the hours bank (PROVINCIAL.md, `hours_bank`)
        "year": "credited year",
        "public_hours": "公需 hours credited in the year",
        "professional_hours": "专业 hours credited in the year",
        "total_hours": "all hours credited in the year",
        "makeup_hours": "hours of 补学 records",
        "public_short": "公需 hours still needed (0 when met)",
        "professional_short": "专业 hours still needed (0 when met)",
        "compliant": "the year's requirement is met (R1)",
        "binding": "false only when R2 exempts the person's employer",
        # reconciliation (PROVINCIAL.md, `reconciliation`)
        "run_id": "the Dagster run that counted",
        "raw": "raw records (= the sum of the four states, D4)",
        "credited": "records credited",
        "merged": "records merged into another",
        "not_credited": "records not credited (R6)",
        "quarantined": "records quarantined, each with a reason",
        # title eligibility (R3)
        "employer_type": "`institution`, `enterprise` or unknown (R3)",
        "eligible": "meets every year R3 names; null for an unknown employer type",
        "years_short": "subject-years short of R3's requirement",
        "short": "the short years in words",
    }
)
