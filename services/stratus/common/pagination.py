"""Pagination with ``limit`` and ``marker``, as OpenStack APIs do it.

Lists are ordered by a unique key; ``marker`` is the key of the last item the
client saw, and the next page starts after it. When a page is full, a
``next`` link carries the same query with the marker of the page's last item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request

from stratus.common import errors
from stratus.common.urls import base_url


@dataclass(frozen=True)
class Page:
    limit: int | None
    marker: str | None


def page_params(request: Request, max_limit: int = 1000) -> Page:
    """``limit`` and ``marker`` from the query, validated (400 if malformed)."""
    raw_limit = request.query_params.get("limit")
    limit = None
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise errors.BadRequest(f"limit must be an integer, not {raw_limit!r}.") from None
        if limit < 0:
            raise errors.BadRequest("limit must not be negative.")
        limit = min(limit, max_limit)
    elif max_limit:
        limit = max_limit
    marker = request.query_params.get("marker") or None
    return Page(limit=limit, marker=marker)


def next_link(
    request: Request,
    items: Sequence[Any],
    page: Page,
    key: str = "id",
    public_endpoint: str | None = None,
) -> str | None:
    """The URL of the next page, or None when this page was not full."""
    if not items or page.limit is None or len(items) < page.limit:
        return None
    last = items[-1]
    marker = last[key] if isinstance(last, dict) else getattr(last, key)
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    params.append(("marker", str(marker)))
    return f"{base_url(request, public_endpoint)}{request.url.path}?{urlencode(params)}"


def collection_links(
    request: Request,
    collection: str,
    items: Sequence[Any],
    page: Page,
    key: str = "id",
    public_endpoint: str | None = None,
) -> dict[str, list[dict[str, str]]]:
    """Nova/Neutron style ``<collection>_links`` (present only with a next page)."""
    link = next_link(request, items, page, key, public_endpoint)
    return {f"{collection}_links": [{"rel": "next", "href": link}]} if link else {}
