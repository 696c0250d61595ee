"""server lifecycle: task arguments, resize migrations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:00:00
"""

import sqlalchemy as sa
from alembic import op

from stratus.common.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compute_servers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("task_args", sa.Text(), nullable=True))
    with op.batch_alter_table("compute_hosts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "resize_across_hosts", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "compute_migrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("server_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("migration_type", sa.String(length=32), nullable=False),
        sa.Column("source_host", sa.String(length=255), nullable=False),
        sa.Column("dest_host", sa.String(length=255), nullable=True),
        sa.Column("old_flavor", sa.Text(), nullable=False),
        sa.Column("new_flavor", sa.Text(), nullable=False),
        sa.Column("old_vm_state", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("compute_migrations", schema=None) as batch_op:
        batch_op.create_index("ix_compute_migrations_server", ["server_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("compute_migrations", schema=None) as batch_op:
        batch_op.drop_index("ix_compute_migrations_server")
    op.drop_table("compute_migrations")
    with op.batch_alter_table("compute_hosts", schema=None) as batch_op:
        batch_op.drop_column("resize_across_hosts")
    with op.batch_alter_table("compute_servers", schema=None) as batch_op:
        batch_op.drop_column("task_args")
