"""What identity's handlers share: database, token formatter, policy, settings."""

from __future__ import annotations

from dataclasses import dataclass

from stratus.common.config import Config
from stratus.common.db import Database, engine_from_config
from stratus.common.policy import Enforcer
from stratus.identity import settings
from stratus.identity.keys import KeyRepository
from stratus.identity.policies import RULES
from stratus.identity.tokens import TokenFormatter


@dataclass
class IdentityService:
    config: Config
    db: Database
    formatter: TokenFormatter
    enforcer: Enforcer

    @property
    def options(self):  # type: ignore[no-untyped-def]
        return self.config.section(settings.SECTION)

    @classmethod
    def from_config(cls, config: Config) -> IdentityService:
        section = config.section(settings.SECTION)
        repository = KeyRepository(section.key_repository, section.max_active_keys)
        return cls(
            config=config,
            db=Database(engine_from_config(config)),
            formatter=TokenFormatter(repository),
            enforcer=Enforcer(RULES, section.policy_file or None),
        )
