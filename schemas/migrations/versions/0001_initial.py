"""The initial schema: raw records, watermarks, the ledger, the hours bank and run records.

Written out in full rather than from `schemas.tables.metadata`, so this revision stays what it
was when later revisions change the tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from schemas.tables import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "completion",
        sa.Column("record_key", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("id_number", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("employer", sa.Text(), nullable=True),
        sa.Column("course_title", sa.Text(), nullable=True),
        sa.Column("course_key", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("mode", sa.Text(), nullable=True),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.Column("credited_year", sa.Integer(), nullable=True),
        sa.Column("makeup", sa.Boolean(), nullable=False),
        sa.Column("hours_reported", sa.Float(), nullable=True),
        sa.Column("hours_credited", sa.Float(), nullable=True),
        sa.Column("hours_trimmed", sa.Float(), nullable=True),
        sa.Column("certificate_no", sa.Text(), nullable=True),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("merged_into", sa.Text(), nullable=True),
        sa.Column("first_seen_at", UtcDateTime(), nullable=True),
        sa.Column("last_seen_at", UtcDateTime(), nullable=True),
        sa.Column("pull_year", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("record_key", name=op.f("pk_completion")),
    )
    op.create_index("ix_completion_id_number", "completion", ["id_number"])

    op.create_table(
        "hours_bank",
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("employer", sa.Text(), nullable=True),
        sa.Column("city", sa.Text(), nullable=True),
        sa.Column("public_hours", sa.Float(), nullable=True),
        sa.Column("professional_hours", sa.Float(), nullable=True),
        sa.Column("total_hours", sa.Float(), nullable=True),
        sa.Column("makeup_hours", sa.Float(), nullable=True),
        sa.Column("public_short", sa.Float(), nullable=True),
        sa.Column("professional_short", sa.Float(), nullable=True),
        sa.Column("compliant", sa.Boolean(), nullable=False),
        sa.Column("binding", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id_number", "year", name=op.f("pk_hours_bank")),
    )
    op.create_table(
        "name_conflict",
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("names", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id_number", name=op.f("pk_name_conflict")),
    )
    op.create_table(
        "raw_record",
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("source_key", sa.Text(), nullable=False),
        sa.Column("raw_id", sa.Text(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("employer", sa.Text(), nullable=True),
        sa.Column("course_code", sa.Text(), nullable=True),
        sa.Column("course_title", sa.Text(), nullable=True),
        sa.Column("category_label", sa.Text(), nullable=True),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("certificate_no", sa.Text(), nullable=True),
        sa.Column("makeup", sa.Boolean(), nullable=False),
        sa.Column("makeup_year", sa.Integer(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("pulled_at", UtcDateTime(), nullable=True),
        sa.Column("pull_year", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column("record_key", sa.Text(), nullable=False),
        sa.Column("first_seen_at", UtcDateTime(), nullable=True),
        sa.Column("last_seen_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("record_key", name=op.f("pk_raw_record")),
    )
    op.create_index("ix_raw_record_platform_pull_year", "raw_record", ["platform", "pull_year"])

    op.create_table(
        "reconciliation",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("raw", sa.BigInteger(), nullable=False),
        sa.Column("credited", sa.BigInteger(), nullable=False),
        sa.Column("merged", sa.BigInteger(), nullable=False),
        sa.Column("not_credited", sa.BigInteger(), nullable=False),
        sa.Column("quarantined", sa.BigInteger(), nullable=False),
        sa.Column("run_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", "platform", "year", name=op.f("pk_reconciliation")),
    )
    op.create_table(
        "sync_run",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=True),
        sa.Column("finished_at", UtcDateTime(), nullable=True),
        sa.Column("years", sa.Text(), nullable=True),
        sa.Column("platforms", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_sync_run")),
    )
    op.create_table(
        "watermark",
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("platform", "year", name=op.f("pk_watermark")),
    )


def downgrade() -> None:
    op.drop_table("watermark")
    op.drop_table("sync_run")
    op.drop_table("reconciliation")
    op.drop_index("ix_raw_record_platform_pull_year", "raw_record")

    op.drop_table("raw_record")
    op.drop_table("name_conflict")
    op.drop_table("hours_bank")
    op.drop_index("ix_completion_id_number", "completion")

    op.drop_table("completion")
