"""initial identity schema

Revision ID: 0001
Revises:
Create Date: 2026-11-25 12:06:21.431709
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "identity_domains",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "identity_regions",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parent_region_id", sa.String(length=255), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_region_id"],
            ["identity_regions.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "identity_revocation_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("audit_id", sa.String(length=64), nullable=True),
        sa.Column("audit_chain_id", sa.String(length=64), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("domain_id", sa.String(length=64), nullable=True),
        sa.Column("trust_id", sa.String(length=64), nullable=True),
        sa.Column("application_credential_id", sa.String(length=64), nullable=True),
        sa.Column("issued_before", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("identity_revocation_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_revocation_events_audit_id"), ["audit_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_revocation_events_revoked_at"), ["revoked_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_revocation_events_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "identity_roles",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "name", name="uq_role_domain_name"),
    )
    op.create_table(
        "identity_services",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "identity_trusts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("trustor_user_id", sa.String(length=64), nullable=False),
        sa.Column("trustee_user_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("impersonation", sa.Boolean(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("remaining_uses", sa.Integer(), nullable=True),
        sa.Column("allow_redelegation", sa.Boolean(), nullable=False),
        sa.Column("redelegation_count", sa.Integer(), nullable=False),
        sa.Column("redelegated_trust_id", sa.String(length=64), nullable=True),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("identity_trusts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_trusts_trustee_user_id"), ["trustee_user_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_trusts_trustor_user_id"), ["trustor_user_id"], unique=False
        )

    op.create_table(
        "identity_assignments",
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("role_id", sa.String(length=64), nullable=False),
        sa.Column("inherited", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["identity_roles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("type", "actor_id", "target_id", "role_id", "inherited"),
    )
    with op.batch_alter_table("identity_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignment_actor", ["actor_id"], unique=False)
        batch_op.create_index("ix_assignment_target", ["target_id"], unique=False)

    op.create_table(
        "identity_endpoints",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.String(length=255), nullable=True),
        sa.Column("interface", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["region_id"],
            ["identity_regions.id"],
        ),
        sa.ForeignKeyConstraint(["service_id"], ["identity_services.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("identity_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_endpoints_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "identity_groups",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["identity_domains.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "name", name="uq_group_domain_name"),
    )
    with op.batch_alter_table("identity_groups", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_groups_domain_id"), ["domain_id"], unique=False
        )

    op.create_table(
        "identity_implied_roles",
        sa.Column("prior_role_id", sa.String(length=64), nullable=False),
        sa.Column("implied_role_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["implied_role_id"], ["identity_roles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["prior_role_id"], ["identity_roles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prior_role_id", "implied_role_id"),
    )
    op.create_table(
        "identity_projects",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["identity_domains.id"],
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["identity_projects.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "name", name="uq_project_domain_name"),
    )
    with op.batch_alter_table("identity_projects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_projects_domain_id"), ["domain_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_projects_parent_id"), ["parent_id"], unique=False
        )

    op.create_table(
        "identity_users",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain_id", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("password_created_at", sa.DateTime(), nullable=True),
        sa.Column("password_expires_at", sa.DateTime(), nullable=True),
        sa.Column("default_project_id", sa.String(length=64), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("failed_auth_count", sa.Integer(), nullable=False),
        sa.Column("failed_auth_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["identity_domains.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain_id", "name", name="uq_user_domain_name"),
    )
    with op.batch_alter_table("identity_users", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_users_domain_id"), ["domain_id"], unique=False
        )

    op.create_table(
        "identity_application_credentials",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("unrestricted", sa.Boolean(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("access_rules", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["identity_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "name", name="uq_app_cred_user_name"),
    )
    with op.batch_alter_table("identity_application_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_application_credentials_project_id"),
            ["project_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_identity_application_credentials_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "identity_group_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["identity_groups.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["identity_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("group_id", "user_id"),
    )
    with op.batch_alter_table("identity_group_members", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_group_members_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "identity_project_tags",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["identity_projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "name"),
    )


def downgrade() -> None:

    op.drop_table("identity_project_tags")
    with op.batch_alter_table("identity_group_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_group_members_user_id"))

    op.drop_table("identity_group_members")
    with op.batch_alter_table("identity_application_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_application_credentials_user_id"))
        batch_op.drop_index(batch_op.f("ix_identity_application_credentials_project_id"))

    op.drop_table("identity_application_credentials")
    with op.batch_alter_table("identity_users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_users_domain_id"))

    op.drop_table("identity_users")
    with op.batch_alter_table("identity_projects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_projects_parent_id"))
        batch_op.drop_index(batch_op.f("ix_identity_projects_domain_id"))

    op.drop_table("identity_projects")
    op.drop_table("identity_implied_roles")
    with op.batch_alter_table("identity_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_groups_domain_id"))

    op.drop_table("identity_groups")
    with op.batch_alter_table("identity_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_endpoints_service_id"))

    op.drop_table("identity_endpoints")
    with op.batch_alter_table("identity_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignment_target")
        batch_op.drop_index("ix_assignment_actor")

    op.drop_table("identity_assignments")
    with op.batch_alter_table("identity_trusts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_trusts_trustor_user_id"))
        batch_op.drop_index(batch_op.f("ix_identity_trusts_trustee_user_id"))

    op.drop_table("identity_trusts")
    op.drop_table("identity_services")
    op.drop_table("identity_roles")
    with op.batch_alter_table("identity_revocation_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_revocation_events_user_id"))
        batch_op.drop_index(batch_op.f("ix_identity_revocation_events_revoked_at"))
        batch_op.drop_index(batch_op.f("ix_identity_revocation_events_audit_id"))

    op.drop_table("identity_revocation_events")
    op.drop_table("identity_regions")
    op.drop_table("identity_domains")
