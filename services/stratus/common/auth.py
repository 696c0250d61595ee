"""Who is calling: token validation and the request context.

Every service learns the caller from the ``X-Auth-Token`` header. Identity
validates tokens itself (a ``LocalValidator`` around its token provider);
every other service asks identity (``RemoteValidator``: ``GET
/v3/auth/tokens`` with its own service token) and caches the answer for a
bounded time, the same contract keystonemiddleware's ``auth_token`` follows.
Handlers get a ``RequestContext``; validation happens on first use, so public
routes (version documents, token issue) never touch it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
from starlette.requests import Request

from stratus.common import errors

TokenData = Mapping[str, Any]


@dataclass(frozen=True)
class RequestContext:
    """The authenticated caller, as policy sees it."""

    user_id: str
    user_name: str = ""
    user_domain_id: str | None = None
    project_id: str | None = None
    project_name: str | None = None
    project_domain_id: str | None = None
    domain_id: str | None = None
    system_scope: str | None = None
    roles: tuple[str, ...] = ()
    is_admin_project: bool = False
    audit_id: str | None = None
    methods: tuple[str, ...] = ()
    trust_id: str | None = None
    application_credential_id: str | None = None
    expires_at: str | None = None
    token: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def creds(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "user_domain_id": self.user_domain_id,
            "project_id": self.project_id,
            "project_domain_id": self.project_domain_id,
            "domain_id": self.domain_id,
            "system_scope": self.system_scope,
            "roles": self.roles,
            "is_admin_project": self.is_admin_project,
            "trust_id": self.trust_id,
        }

    @classmethod
    def from_token(cls, token: Mapping[str, Any]) -> RequestContext:
        """Build from a Keystone v3 token body (``{"token": {...}}`` contents)."""
        user = token.get("user", {})
        project = token.get("project") or {}
        domain = token.get("domain") or {}
        system = token.get("system") or {}
        trust = token.get("OS-TRUST:trust") or {}
        app_cred = token.get("application_credential") or {}
        audit_ids = token.get("audit_ids") or [None]
        return cls(
            user_id=user.get("id", ""),
            user_name=user.get("name", ""),
            user_domain_id=(user.get("domain") or {}).get("id"),
            project_id=project.get("id"),
            project_name=project.get("name"),
            project_domain_id=(project.get("domain") or {}).get("id"),
            domain_id=domain.get("id"),
            system_scope="all" if system.get("all") else None,
            roles=tuple(r["name"] for r in token.get("roles", [])),
            is_admin_project=bool(token.get("is_admin_project", False)),
            audit_id=audit_ids[0],
            methods=tuple(token.get("methods", [])),
            trust_id=trust.get("id"),
            application_credential_id=app_cred.get("id"),
            expires_at=token.get("expires_at"),
            token=dict(token),
        )


class TokenValidator(Protocol):
    def validate(self, token: str) -> TokenData:
        """The token's body, or raise ``errors.Unauthorized``/``NotFound``."""


class LocalValidator:
    """Identity validates its own tokens with a function of its token provider."""

    def __init__(self, validate: Callable[[str], TokenData]):
        self._validate = validate

    def validate(self, token: str) -> TokenData:
        return self._validate(token)


class _TTLCache:
    def __init__(self, ttl: float, size: int):
        self.ttl = ttl
        self.size = size
        self._data: OrderedDict[str, tuple[float, TokenData]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> TokenData | None:
        with self._lock:
            entry = self._data.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._data[key]
                return None
            self._data.move_to_end(key)
            return entry[1]

    def put(self, key: str, value: TokenData) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


@dataclass(frozen=True)
class ServiceCredentials:
    auth_url: str
    username: str
    password: str
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"

    def auth_request(self) -> dict[str, Any]:
        """The body of ``POST /v3/auth/tokens``: password, project scope."""
        return {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.username,
                            "password": self.password,
                            "domain": {"name": self.user_domain_name},
                        }
                    },
                },
                "scope": {
                    "project": {
                        "name": self.project_name,
                        "domain": {"name": self.project_domain_name},
                    }
                },
            }
        }


class LoginError(Exception):
    """Identity could not be reached, or refused a service's credentials."""


class ServiceLogin:
    """A service acting on its own: a project-scoped token, renewed before it expires.

    ``token()`` gives the token and the token's body (its catalog, project),
    logging in again when the token is within a minute of expiring or when
    asked (``force``, after a 401). Thread-safe; one login at a time.
    """

    def __init__(self, credentials: ServiceCredentials, http: httpx.Client, hint: str = ""):
        self.credentials = credentials
        self.http = http
        self.hint = hint  # where the operator sets these credentials
        self._current: tuple[str, float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def token(self, *, force: bool = False) -> tuple[str, dict[str, Any]]:
        with self._lock:
            if force or self._current is None or self._current[1] <= time.time() + 60:
                self._current = self._login()
            return self._current[0], self._current[2]

    def _login(self) -> tuple[str, float, dict[str, Any]]:
        c = self.credentials
        base = c.auth_url.rstrip("/").removesuffix("/v3")
        try:
            response = self.http.post(f"{base}/v3/auth/tokens", json=c.auth_request())
        except httpx.HTTPError as exc:
            raise LoginError(f"identity is unreachable at {base}: {exc}") from exc
        if response.status_code != 201:
            hint = f"; check {self.hint}" if self.hint else ""
            raise LoginError(
                f"identity refused the user {c.username!r} of project {c.project_name!r} "
                f"({response.status_code}){hint}"
            )
        body = response.json()["token"]
        return response.headers["X-Subject-Token"], _parse_time(body.get("expires_at", "")), body


def catalog_url(
    body: Mapping[str, Any], service_type: str, interface: str, region: str = ""
) -> str | None:
    """The URL of ``service_type`` at ``interface`` (and ``region``) in a token's catalog."""
    for service in body.get("catalog") or []:
        if service.get("type") != service_type:
            continue
        for endpoint in service.get("endpoints", []):
            if endpoint.get("interface") != interface:
                continue
            if region and region not in (endpoint.get("region_id"), endpoint.get("region")):
                continue
            return str(endpoint["url"]).rstrip("/")
    return None


class RemoteValidator:
    """Validates user tokens with identity, caching answers for ``cache_ttl`` s.

    A revoked token keeps working for at most ``cache_ttl`` seconds after its
    revocation; a token that expires is never served from the cache.
    """

    def __init__(
        self,
        credentials: ServiceCredentials,
        *,
        cache_ttl: float = 300,
        cache_size: int = 10000,
        timeout: float = 10,
        client: httpx.Client | None = None,
    ):
        self.credentials = credentials
        self.client = client or httpx.Client(timeout=timeout)
        self.cache = _TTLCache(cache_ttl, cache_size)
        self._service_token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def _get_service_token(self, force: bool = False) -> str:
        with self._lock:
            if not force and self._service_token and self._service_token[1] > time.time() + 30:
                return self._service_token[0]
            c = self.credentials
            body = c.auth_request()
            response = self.client.post(f"{c.auth_url.rstrip('/')}/v3/auth/tokens", json=body)
            if response.status_code != 201:
                raise errors.ServiceUnavailable("The service cannot authenticate with identity.")
            token = response.headers["X-Subject-Token"]
            expires = _parse_time(response.json()["token"]["expires_at"])
            self._service_token = (token, expires)
            return token

    def validate(self, token: str) -> TokenData:
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self.cache.get(key)
        if cached is not None and _parse_time(cached.get("expires_at", "")) > time.time():
            return cached
        url = f"{self.credentials.auth_url.rstrip('/')}/v3/auth/tokens"
        for attempt in (0, 1):
            service_token = self._get_service_token(force=attempt == 1)
            try:
                response = self.client.get(
                    url, headers={"X-Auth-Token": service_token, "X-Subject-Token": token}
                )
            except httpx.HTTPError as exc:
                raise errors.ServiceUnavailable(f"Identity is unreachable: {exc}") from exc
            if response.status_code == 401 and attempt == 0:
                continue  # our own token expired or was revoked: get a new one
            break
        if response.status_code == 200:
            data = response.json()["token"]
            self.cache.put(key, data)
            return data
        if response.status_code in (401, 404):
            raise errors.Unauthorized("The token is not valid.")
        raise errors.ServiceUnavailable("Identity could not validate the token.")


def _parse_time(value: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return 0.0


def context_of(request: Request) -> RequestContext:
    """The authenticated caller (401 without a valid token), validated once."""
    cached = getattr(request.state, "context", None)
    if cached is not None:
        return cached
    token = request.headers.get("x-auth-token")
    if not token:
        raise errors.Unauthorized()
    validator: TokenValidator = request.app.state.validator
    try:
        data = validator.validate(token)
    except errors.NotFound as exc:
        raise errors.Unauthorized("The request you have made requires authentication.") from exc
    context = RequestContext.from_token(data)
    request.state.context = context
    return context


# --- services other than identity -------------------------------------------


def register_authtoken(section: str) -> None:
    """Declare a service's ``[<component>_authtoken]`` section.

    Each service has its own section (and its own user in identity), so that
    several services can share one host's configuration directory.
    """
    from stratus.common.config import Option, register

    register(
        section,
        [
            Option(
                "auth_url",
                default="http://127.0.0.1:5000",
                help="Identity endpoint this service validates tokens with (the internal one).",
            ),
            Option("username", required=True, help="The service's own user in identity."),
            Option("password", required=True, help="That user's password."),
            Option("project_name", default="service", help="Project the service user works in."),
            Option("user_domain_name", default="Default", help="Domain of the service user."),
            Option("project_domain_name", default="Default", help="Domain of project_name."),
            Option(
                "cache_ttl",
                "int",
                300,
                "Seconds a validated token is trusted without asking identity again "
                "(also how long a revoked token may still be honoured).",
                minimum=0,
            ),
            Option("timeout", "float", 10.0, "Seconds to wait for identity.", minimum=0.1),
        ],
    )


def credentials_from_section(options: Any) -> ServiceCredentials:
    """The service user of a ``register_authtoken`` section."""
    return ServiceCredentials(
        auth_url=options.auth_url,
        username=options.username,
        password=options.password,
        project_name=options.project_name,
        user_domain_name=options.user_domain_name,
        project_domain_name=options.project_domain_name,
    )


def validator_from_config(config: Any, section: str) -> RemoteValidator:
    """The ``RemoteValidator`` described by a ``register_authtoken`` section."""
    options = config.section(section)
    return RemoteValidator(
        credentials_from_section(options), cache_ttl=options.cache_ttl, timeout=options.timeout
    )
