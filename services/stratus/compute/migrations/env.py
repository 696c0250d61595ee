"""Alembic environment of the compute component."""

from alembic import context

from stratus.common.db import run_env
from stratus.compute.model import Base

run_env(context, Base.metadata)
