"""Alembic environment of the image component."""

from alembic import context

from stratus.common.db import run_env
from stratus.image.model import Base

run_env(context, Base.metadata)
