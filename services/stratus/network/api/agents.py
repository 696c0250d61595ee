"""``/v2.0/agents`` and the agents' own reports.

Each host's agent reports after every pass (``POST
/v2.0/stratus-agent-reports``, the network service's user): the report is
its heartbeat, its configuration (tunnel endpoint, physical networks) and
which of its ports it wired (``ACTIVE``) or could not (``DOWN``). A report
also places DHCP and router ports that found no live host when they were
made. Operators see the agents with ``openstack network agent list``.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.db import utcnow
from stratus.common.handlers import no_content, ok
from stratus.network import placement
from stratus.network.api import common
from stratus.network.model import Agent, Port, Router

REPORT_ATTRIBUTES = {
    "host",
    "agent_type",
    "binary",
    "configurations",
    "ports_up",
    "ports_down",
}


def view(req: ApiRequest, agent: Agent) -> dict[str, Any]:
    down_after = timedelta(seconds=common.service(req).options.agent_down_time)
    return {
        "id": agent.id,
        "agent_type": agent.agent_type,
        "binary": agent.binary,
        "host": agent.host,
        "topic": "N/A",
        "admin_state_up": agent.admin_state_up,
        "alive": agent.heartbeat_at >= utcnow() - down_after,
        "configurations": json.loads(agent.configurations or "{}"),
        "description": agent.description,
        "availability_zone": None,
        "resources_synced": None,
        "created_at": common.timestamp(agent.created_at),
        "started_at": common.timestamp(agent.started_at),
        "heartbeat_timestamp": common.timestamp(agent.heartbeat_at),
    }


def _get(session: Session, agent_id: str) -> Agent:
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise common.not_found("Agent", agent_id)
    return agent


@endpoint
def index(req: ApiRequest) -> Response:
    if not common.allowed(req, "network:get_agent"):
        # Neutron answers an empty list, not 403, to those who may not see agents.
        return common.list_response(req, "agents", [])
    with common.service(req).db.session() as session:
        views = [view(req, a) for a in session.scalars(select(Agent))]
    return common.list_response(req, "agents", views)


@endpoint
def show(req: ApiRequest) -> Response:
    if not common.allowed(req, "network:get_agent"):
        raise common.not_found("Agent", req.path_params["agent_id"])
    with common.service(req).db.session() as session:
        result = view(req, _get(session, req.path_params["agent_id"]))
    return common.show(req, "agent", result)


@endpoint
def update(req: ApiRequest) -> Response:
    common.enforce(req, "network:update_agent")
    values = common.body(req, "agent")
    common.check_attributes(values, {"admin_state_up", "description"})
    with common.service(req).db.session() as session:
        agent = _get(session, req.path_params["agent_id"])
        if "admin_state_up" in values:
            agent.admin_state_up = common.as_bool(values["admin_state_up"], "admin_state_up")
        if "description" in values:
            agent.description = common.as_string(values["description"], "description")
        session.flush()
        result = view(req, agent)
    return ok({"agent": result})


@endpoint
def remove(req: ApiRequest) -> Response:
    common.enforce(req, "network:delete_agent")
    with common.service(req).db.session() as session:
        session.delete(_get(session, req.path_params["agent_id"]))
    return no_content()


def _ids(values: dict[str, Any], key: str) -> list[str]:
    found = values.get(key, [])
    if not isinstance(found, list) or not all(isinstance(i, str) for i in found):
        raise errors.BadRequest(f"Invalid input for {key}: a list of port IDs is required.")
    return found


def _place_unbound(session: Session, req: ApiRequest) -> None:
    """DHCP ports and routers made while no agent was alive get a host now."""
    options = common.service(req).options
    for port in session.scalars(
        select(Port).where(Port.device_owner == "network:dhcp", Port.host == "")
    ):
        port.host = placement.pick_host(session, options)
        session.flush()
    for router in session.scalars(select(Router).where(Router.host == "")):
        host = placement.pick_host(session, options)
        if not host:
            break
        router.host = host
        for port in session.scalars(
            select(Port).where(
                Port.device_id == router.id, Port.device_owner.in_(placement.NETWORK_OWNERS)
            )
        ):
            port.host = host
        session.flush()


@endpoint
def report(req: ApiRequest) -> Response:
    common.enforce(req, "network:report_agent")
    values = common.body(req, "report")
    common.check_attributes(values, REPORT_ATTRIBUTES)
    host = values.get("host")
    if not isinstance(host, str) or not host:
        raise errors.BadRequest("Invalid input for host: a host name is required.")
    configurations = values.get("configurations") or {}
    if not isinstance(configurations, dict):
        raise errors.BadRequest("Invalid input for configurations: an object is required.")
    agent_type = common.as_string(values.get("agent_type") or placement.AGENT_TYPE, "agent_type")
    ports_up, ports_down = _ids(values, "ports_up"), _ids(values, "ports_down")
    with common.service(req).db.session() as session:
        agent = session.scalar(
            select(Agent).where(Agent.host == host, Agent.agent_type == agent_type)
        )
        now = utcnow()
        if agent is None:
            agent = Agent(
                id=str(uuid.uuid4()),
                host=host,
                agent_type=agent_type,
                binary=common.as_string(values.get("binary") or "stratus-network-agent", "binary"),
                created_at=now,
                started_at=now,
            )
            session.add(agent)
        agent.configurations = json.dumps(configurations, sort_keys=True)
        agent.heartbeat_at = now
        session.flush()
        for status, ids in (("ACTIVE", ports_up), ("DOWN", ports_down)):
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                for port in session.scalars(
                    select(Port).where(Port.id.in_(chunk), Port.host == host)
                ):
                    if port.status != status:
                        port.status = status
        _place_unbound(session, req)
        result = view(req, agent)
    return ok({"agent": result})


ROUTES = [
    Route("/v2.0/agents", index, methods=["GET"]),
    Route("/v2.0/agents/{agent_id}", show, methods=["GET"]),
    Route("/v2.0/agents/{agent_id}", update, methods=["PUT"]),
    Route("/v2.0/agents/{agent_id}", remove, methods=["DELETE"]),
    Route("/v2.0/stratus-agent-reports", report, methods=["POST"]),
]
