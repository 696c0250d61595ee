"""Which host runs a network's DHCP server or a router: one with a live agent.

Hosts are those whose agent reported within ``agent_down_time`` and is
enabled (and, if ``network_hosts`` is set, one of those). The host carrying
the fewest DHCP and router ports wins, so work spreads as hosts are added.
A port that finds no host stays unbound; the first agent to report binds it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stratus.common.db import utcnow
from stratus.network.model import Agent, Port

AGENT_TYPE = "Linux bridge agent"
NETWORK_OWNERS = ("network:dhcp", "network:router_interface", "network:router_gateway")


def live_hosts(session: Session, options: Any) -> list[str]:
    cutoff = utcnow() - timedelta(seconds=options.agent_down_time)
    hosts = session.scalars(
        select(Agent.host).where(
            Agent.agent_type == AGENT_TYPE,
            Agent.admin_state_up.is_(True),
            Agent.heartbeat_at >= cutoff,
        )
    )
    allowed = set(options.network_hosts)
    return sorted(h for h in hosts if not allowed or h in allowed)


def pick_host(session: Session, options: Any) -> str:
    """The live network host with the least work, or "" when there is none."""
    hosts = live_hosts(session, options)
    if not hosts:
        return ""
    load = dict(
        session.execute(  # type: ignore[arg-type]
            select(Port.host, func.count())
            .where(Port.host.in_(hosts), Port.device_owner.in_(NETWORK_OWNERS))
            .group_by(Port.host)
        ).all()
    )
    return min(hosts, key=lambda h: (load.get(h, 0), h))
