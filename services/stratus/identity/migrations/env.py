"""Alembic environment of the identity component."""

from alembic import context

from stratus.common.db import run_env
from stratus.identity.model import Base

run_env(context, Base.metadata)
