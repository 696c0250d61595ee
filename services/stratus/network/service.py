"""What the network handlers share: database, policy and settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stratus.common.config import Config, ConfigError
from stratus.common.db import Database, engine_from_config
from stratus.common.policy import Enforcer
from stratus.network import settings
from stratus.network.policies import RULES
from stratus.network.segments import SegmentRanges


@dataclass
class NetworkService:
    config: Config
    db: Database
    enforcer: Enforcer
    ranges: SegmentRanges

    @property
    def options(self) -> Any:
        return self.config.section(settings.SECTION)

    @classmethod
    def from_config(cls, config: Config) -> NetworkService:
        section = config.section(settings.SECTION)
        unknown = set(section.tenant_network_types) - {"vxlan", "gre", "vlan"}
        if unknown:
            raise ConfigError(
                f"[network] tenant_network_types: unknown types {', '.join(sorted(unknown))}"
            )
        ranges = SegmentRanges.from_options(section)
        base = section.base_mac.lower().split(":")
        if len(base) != 6 or not all(len(o) == 2 for o in base):
            raise ConfigError(f"[network] base_mac: {section.base_mac!r} is not a MAC address")
        return cls(
            config=config,
            db=Database(engine_from_config(config, sqlite_immediate=True)),
            enforcer=Enforcer(RULES, section.policy_file or None),
            ranges=ranges,
        )
