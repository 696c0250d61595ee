"""What the compute handlers share: database, policy and settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from stratus.common.config import Config
from stratus.common.db import Database, engine_from_config
from stratus.common.policy import Enforcer
from stratus.compute import settings
from stratus.compute.policies import RULES


@dataclass
class ComputeService:
    config: Config
    db: Database
    enforcer: Enforcer
    # For the image and network APIs (remote.Neighbours).
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    @property
    def options(self) -> Any:
        return self.config.section(settings.SECTION)

    @classmethod
    def from_config(cls, config: Config) -> ComputeService:
        section = config.section(settings.SECTION)
        return cls(
            config=config,
            db=Database(engine_from_config(config, sqlite_immediate=True)),
            enforcer=Enforcer(RULES, section.policy_file or None),
        )
