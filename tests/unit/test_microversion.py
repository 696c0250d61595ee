"""Microversion negotiation."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from stratus.common import errors
from stratus.common.microversion import Version, VersionRange

RANGE = VersionRange(
    "compute", Version(2, 1), Version(2, 60), legacy_header="X-OpenStack-Nova-API-Version"
)


def request(headers):
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, "2.1"),
        ({"OpenStack-API-Version": "compute 2.42"}, "2.42"),
        ({"OpenStack-API-Version": "compute latest"}, "2.60"),
        ({"OpenStack-API-Version": "identity 3.9, compute 2.5"}, "2.5"),
        ({"OpenStack-API-Version": "volume 3.9"}, "2.1"),
        ({"X-OpenStack-Nova-API-Version": "2.10"}, "2.10"),
    ],
)
def test_negotiation(headers, expected):
    assert str(RANGE.negotiate(request(headers))) == expected


@pytest.mark.parametrize("value", ["2.61", "3.0", "2.0", "1.1"])
def test_out_of_range_is_406(value):
    with pytest.raises(errors.NotAcceptable):
        RANGE.negotiate(request({"OpenStack-API-Version": f"compute {value}"}))


@pytest.mark.parametrize("value", ["2", "two", "2.01", "2.1.1"])
def test_malformed_is_400(value):
    with pytest.raises(errors.BadRequest):
        RANGE.negotiate(request({"OpenStack-API-Version": f"compute {value}"}))


def test_response_headers():
    headers = RANGE.response_headers(Version(2, 5))
    assert headers["OpenStack-API-Version"] == "compute 2.5"
    assert headers["X-OpenStack-Nova-API-Version"] == "2.5"
    assert "OpenStack-API-Version" in headers["Vary"]
