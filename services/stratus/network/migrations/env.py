"""Alembic environment of the network component."""

from alembic import context

from stratus.common.db import run_env
from stratus.network.model import Base

run_env(context, Base.metadata)
