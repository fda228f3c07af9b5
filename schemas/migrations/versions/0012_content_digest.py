"""A digest of each raw row's content. A platform that sends a whole year again every night
(spa, huaxue) sends mostly records stored already; with `raw_record.content_digest` stored, the
store finds those by one narrow look-up instead of binding every column of them to an upsert
that leaves them alone. Rows stored before this revision have none (null: not known) and take
the upsert once, which stores their digest.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("raw_record") as batch:
        batch.add_column(sa.Column("content_digest", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raw_record") as batch:
        batch.drop_column("content_digest")
