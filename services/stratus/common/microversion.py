"""Microversion negotiation (``OpenStack-API-Version``).

A service declares its service type and the range it implements. A request
may ask for a version with ``OpenStack-API-Version: <type> X.Y`` (or
``latest``), or with a legacy header such as ``X-OpenStack-Nova-API-Version``.
No header means the minimum. A version above the maximum (or below the
minimum) is refused with 406; a malformed one with 400. Responses say which
version answered and that the answer varies with the header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from starlette.requests import Request

from stratus.common import errors

_VERSION = re.compile(r"^([1-9]\d*)\.(0|[1-9]\d*)$")


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if not match:
            raise errors.BadRequest(
                f"Version {text!r} is not of the form X.Y (for example 2.1) or 'latest'."
            )
        return cls(int(match.group(1)), int(match.group(2)))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.major, self.minor) < (other.major, other.minor)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


@dataclass(frozen=True)
class VersionRange:
    service_type: str
    minimum: Version
    maximum: Version
    legacy_header: str | None = None

    def negotiate(self, request: Request) -> Version:
        requested = self._requested(request)
        if requested is None:
            return self.minimum
        if requested == "latest":
            return self.maximum
        version = Version.parse(requested)
        if version.major != self.maximum.major or not self.minimum <= version <= self.maximum:
            raise errors.NotAcceptable(
                f"Version {version} is not supported by the API. Minimum is {self.minimum} "
                f"and maximum is {self.maximum}."
            )
        return version

    def _requested(self, request: Request) -> str | None:
        for value in request.headers.getlist("openstack-api-version"):
            for part in value.split(","):
                words = part.split()
                if len(words) == 2 and words[0].lower() == self.service_type:
                    return words[1].lower()
        if self.legacy_header:
            legacy = request.headers.get(self.legacy_header)
            if legacy:
                return legacy.strip().lower()
        return None

    def response_headers(self, version: Version) -> dict[str, str]:
        headers = {
            "OpenStack-API-Version": f"{self.service_type} {version}",
            "Vary": "OpenStack-API-Version",
        }
        if self.legacy_header:
            headers[self.legacy_header] = str(version)
            headers["Vary"] += f", {self.legacy_header}"
        return headers
