"""An agent's HTTP client for its controller's API, as its own service user.

It logs in to identity with the agent's ``ServiceCredentials`` (keystone v3
password, project scope), takes the endpoint of ``service_type`` from the
token's catalog (or a configured ``api_url``) and renews the token once on
a 401. Every failure to reach identity or the API raises ``ApiError``, so
an agent never mistakes an unreachable controller for an empty answer.
"""

from __future__ import annotations

from typing import Any

import httpx

from stratus.common.auth import LoginError, ServiceCredentials, ServiceLogin, catalog_url


class ApiError(RuntimeError):
    """Identity or the API could not be reached, or refused the request."""


def error_message(response: httpx.Response) -> str:
    """The message of an OpenStack-style error answer (any service's shape:
    ``{"<kind>": {"message": ...}}``), or the start of its text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and len(body) == 1:
        (inner,) = body.values()
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return response.text[:200]


def endpoint_from_catalog(
    catalog: list[dict[str, Any]],
    interface: str = "internal",
    region: str = "",
    service_type: str = "network",
    hint: str = "",
) -> str:
    """The ``service_type`` endpoint of a keystone v3 catalog."""
    url = catalog_url({"catalog": catalog}, service_type, interface, region)
    if url:
        return url
    where = f" in region {region}" if region else ""
    advice = f"; check {hint} interface and region_name, or set api_url" if hint else ""
    raise ApiError(f"the catalog has no {interface} {service_type} endpoint{where}{advice}")


class ServiceClient:
    """Authenticated HTTP to one service's API, the token renewed when needed."""

    service_type = ""
    section = ""  # the agent's config section, named in error messages

    def __init__(
        self,
        credentials: ServiceCredentials,
        *,
        api_url: str = "",
        interface: str = "internal",
        region: str = "",
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ):
        self.credentials = credentials
        self.api_url = api_url.rstrip("/")
        self.interface = interface
        self.region = region
        self.http = http or httpx.Client(timeout=httpx.Timeout(timeout))
        self.login = ServiceLogin(credentials, self.http, f"[{self.section}_authtoken]")

    @classmethod
    def from_config(cls, config: Any) -> Any:
        """A client as ``[<section>]`` (api_url, interface, region_name,
        timeout) and ``[<section>_authtoken]`` (the login) say."""
        from stratus.common.auth import credentials_from_section

        options = config.section(cls.section)
        return cls(
            credentials_from_section(config.section(f"{cls.section}_authtoken")),
            api_url=options.api_url,
            interface=options.interface,
            region=options.region_name,
            timeout=options.timeout,
        )

    def close(self) -> None:
        self.http.close()

    def session(self, *, force: bool = False) -> tuple[str, str]:
        """A valid token and the API's base URL."""
        try:
            token, body = self.login.token(force=force)
        except LoginError as exc:
            raise ApiError(str(exc)) from exc
        endpoint = self.api_url or endpoint_from_catalog(
            body.get("catalog") or [],
            self.interface,
            self.region,
            self.service_type,
            f"[{self.section}]",
        )
        return token, endpoint

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``method`` on ``url`` (absolute, or a path under the API); 401 renews once."""
        for renew in (False, True):
            token, base = self.session(force=renew)
            target = url if url.startswith(("http://", "https://")) else base + url
            try:
                response = self.http.request(
                    method, target, headers={"X-Auth-Token": token}, **kwargs
                )
            except httpx.HTTPError as exc:
                raise ApiError(
                    f"the {self.service_type} API is unreachable at {base}: {exc}"
                ) from exc
            if response.status_code != 401 or renew:
                return response
        raise AssertionError("unreachable")
