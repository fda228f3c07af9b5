"""R3's verdicts kept per person, so a night recomputes only the people it changed.

`title_verdict`: one row per person of a Yantai unit (`pipelines.rules.eligibility`), as of the
write of the outputs that `pipeline_state` `title_verdicts` names. `changed_person`: the write
that last changed each person's rows in a partial replace (a full replace moves
`outputs_full`, and every verdict is computed again). No verdicts are carried over: the next
run computes them all.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "changed_person",
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id_number", name=op.f("pk_changed_person")),
    )
    op.create_table(
        "title_verdict",
        sa.Column("id_number", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("employer", sa.Text(), nullable=True),
        sa.Column("employer_type", sa.Text(), nullable=True),
        sa.Column("eligible", sa.Boolean(), nullable=True),
        sa.Column("years_short", sa.Integer(), nullable=False),
        sa.Column("public_short", sa.Float(), nullable=True),
        sa.Column("professional_short", sa.Float(), nullable=True),
        sa.Column("short", sa.Text(), nullable=True),
        sa.Column("person_bucket", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id_number", name=op.f("pk_title_verdict")),
    )
    op.create_index("ix_title_verdict_person_bucket", "title_verdict", ["person_bucket"])


def downgrade() -> None:
    op.drop_table("title_verdict")
    op.drop_table("changed_person")
