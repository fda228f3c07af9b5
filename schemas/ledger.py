"""Columns of the three frames the rules produce and the database stores (PROVINCIAL.md)."""

from __future__ import annotations

from schemas.raw import TIMESTAMP

STATES: tuple[str, ...] = ("credited", "merged", "not_credited", "quarantined")
QUARANTINE_REASONS: tuple[str, ...] = (
    "invalid_id_number",
    "id_number_corrupted",
    "unknown_category",
    "invalid_makeup",
    "out_of_range_date",
    "invalid_hours",
)
TIME_BOUND_REASON = "out_of_range_date"
"""The one quarantine that depends on the run's date (R12): judged again by every refresh."""
MODES: tuple[str, ...] = ("training", "self_study", "conversion")
"""学习方式: platform records are training (R5); forms bring the other two (FORMS.md)."""
FORM_REASONS: tuple[str, ...] = (
    "pending_review",
    "unfiled_training",
    "outside_filing",
    "no_learning_file",
    "no_evidence",
)
"""Why a form row is not credited, in FORMS.md's F-order (the first that applies wins)."""
CAP_REASONS: tuple[str, ...] = ("R7", "F2", "R8", "R9")
"""Why a credited row was trimmed: the daily cap, the filing's approved hours, the yearly caps."""

COMPLETION_DTYPES: dict[str, str] = {
    "record_key": "str",
    "platform": "str",
    "city": "str",
    "id_number": "str",
    "name": "str",
    "employer": "str",
    "course_title": "str",
    "course_key": "str",
    "subject": "str",
    "mode": "str",
    "completed_at": TIMESTAMP,
    "credited_year": "Int64",
    "makeup": "bool",
    "hours_reported": "float64",
    "hours_credited": "float64",
    "hours_trimmed": "float64",
    "certificate_no": "str",
    "state": "str",
    "reason": "str",
    "merged_into": "str",
    "first_seen_at": TIMESTAMP,
    "last_seen_at": TIMESTAMP,
}

HOURS_BANK_DTYPES: dict[str, str] = {
    "id_number": "str",
    "year": "int64",
    "name": "str",
    "employer": "str",
    "city": "str",
    "public_hours": "float64",
    "professional_hours": "float64",
    "total_hours": "float64",
    "makeup_hours": "float64",
    "public_short": "float64",
    "professional_short": "float64",
    "compliant": "bool",
    "binding": "bool",
}

RECONCILIATION_DTYPES: dict[str, str] = {
    "run_id": "str",
    "platform": "str",
    "year": "int64",
    "raw": "int64",
    "credited": "int64",
    "merged": "int64",
    "not_credited": "int64",
    "quarantined": "int64",
}
ELIGIBILITY_DTYPES: dict[str, str] = {
    "id_number": "str",
    "name": "str",
    "employer": "str",
    "employer_type": "str",
    "eligible": "boolean",
    "years_short": "int64",
    "public_short": "float64",
    "professional_short": "float64",
    "short": "str",
}
"""R3's verdict per person of a Yantai unit (`pipelines.rules.eligibility`)."""
