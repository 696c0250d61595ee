"""Image data in OpenStack Swift: one account, one container, large images segmented.

Single-tenant: every image lives in the account of the project the image
service's Swift user works in (``[image] swift_store_*``; empty credentials
are those of ``[image_authtoken]``), as the object ``<image_id>`` of one
container (``swift_store_container``, made at start when missing). That user
needs an operator role of the Swift proxy (``member``) on its project.

A writer spools the upload to a local file (qemu-img inspects it before the
image goes active), and ``commit`` sends it: as one object when it fits in
``swift_store_segment_size``, else as segments in ``<container>_segments``
(named ``<image_id>/<index>``) and a static large object manifest. Each
request's MD5 is checked against the ETag Swift answers. The location
``swift://<container>/<image_id>`` is relative to the account, so a new
proxy address or catalog entry does not strand the images. Swift keeps
every object on several devices (the ring's replicas), so an image survives
the loss of a device; reads come from the replicas that are left.

Tokens come from identity's ``/v3/auth/tokens`` (password method, project
scope) with the object-store endpoint of the token's catalog; a 401 from
Swift gets a new token and one more try.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote, urlsplit

import httpx

from stratus.common.auth import LoginError, ServiceCredentials, ServiceLogin, catalog_url
from stratus.image.store import SpoolWriter, StoreError, StoreFull, translate_os_error

LOG = logging.getLogger(__name__)

SCHEME = "swift://"
CHUNK = 1024 * 1024
# Swift's defaults, used when the proxy's /info does not say.
MAX_FILE_SIZE = 5 * 1024 * 1024 * 1024 + 2
MAX_MANIFEST_SEGMENTS = 1000
# Answers worth another try for a request that can be repeated.
TRANSIENT = (500, 502, 503, 504)


class SwiftClient:
    """HTTP to one Swift account with a token of identity, renewed when needed."""

    def __init__(
        self,
        credentials: ServiceCredentials,
        *,
        region: str = "",
        interface: str = "internal",
        endpoint: str = "",
        timeout: float = 60.0,
        retries: int = 2,
    ):
        self.credentials = credentials
        self.region = region
        self.interface = interface
        self.endpoint = endpoint.rstrip("/")
        self.retries = retries
        self.http = httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False)
        self.login = ServiceLogin(
            credentials,
            self.http,
            "[image] swift_store_user, swift_store_password and swift_store_project_name",
        )

    def close(self) -> None:
        self.http.close()

    # --- identity -----------------------------------------------------------

    def session(self, *, force: bool = False) -> tuple[str, str]:
        """A valid token and the account URL."""
        try:
            token, body = self.login.token(force=force)
        except LoginError as exc:
            raise StoreError(str(exc)) from exc
        if self.endpoint:
            project_id = (body.get("project") or {}).get("id", "")
            return token, self.endpoint.replace("{project_id}", project_id)
        # Identity fills in $(project_id)s; an endpoint of another shape is used as is.
        account = catalog_url(body, "object-store", self.interface, self.region)
        if account is None:
            region = f" in region {self.region}" if self.region else ""
            raise StoreError(
                f"the catalog has no {self.interface} object-store endpoint{region}; check "
                "[image] swift_store_interface and swift_store_region_name, or set "
                "swift_store_endpoint"
            )
        return token, account

    # --- Swift --------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str = "",
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        body: Callable[[], Any] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """``method`` on ``<account>/<path>``; ``body()`` makes the content of each try.

        A 401 renews the token once; connection errors and 5xx answers are
        tried again (every request made here can be repeated).
        """
        renewed = False
        attempt = 0
        while True:
            token, account = self.session(force=renewed and attempt == 0)
            url = f"{account}/{quote(path)}" if path else account
            request = self.http.build_request(
                method,
                url,
                params=params,
                headers={**(headers or {}), "X-Auth-Token": token},
                content=body() if body is not None else None,
            )
            try:
                response = self.http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                if attempt < self.retries:
                    attempt += 1
                    time.sleep(0.5 * attempt)
                    continue
                raise StoreError(f"object storage is unreachable at {account}: {exc}") from exc
            if response.status_code == 401 and not renewed:
                response.close()
                renewed, attempt = True, 0
                continue
            if response.status_code in TRANSIENT and attempt < self.retries:
                response.close()
                attempt += 1
                time.sleep(0.5 * attempt)
                continue
            return response

    def info(self) -> dict[str, Any]:
        """The proxy's capabilities (``/info``), empty if it does not tell."""
        _, account = self.session()
        parts = urlsplit(account)
        try:
            response = self.http.get(f"{parts.scheme}://{parts.netloc}/info")
            return dict(response.json()) if response.status_code == 200 else {}
        except (httpx.HTTPError, ValueError):
            return {}


def _fail(response: httpx.Response, what: str) -> Exception:
    """StoreFull for a quota or a full cluster, else StoreError naming the answer."""
    try:
        detail = response.read().decode(errors="replace").strip()[:200]
    except httpx.HTTPError:
        detail = ""
    message = f"object storage could not {what}: {response.status_code} {detail}".strip()
    if response.status_code in (413, 507):
        return StoreFull(message)
    return StoreError(message)


def parse_location(location: str) -> tuple[str, str]:
    """(container, object) of a ``swift://<container>/<object>`` location."""
    if not location.startswith(SCHEME):
        raise StoreError(f"not a Swift location: {location}")
    container, _, name = location[len(SCHEME) :].partition("/")
    if not container or not name:
        raise StoreError(f"not a Swift location: {location}")
    return container, name


class SwiftWriter(SpoolWriter):
    """Spools to ``local_path``; ``commit`` uploads (see the module's description)."""

    def __init__(self, store: SwiftStore, image_id: str):
        super().__init__(store.spool_dir / f"{image_id}.partial")
        self.store = store
        self.image_id = image_id
        self._segments: list[str] = []  # uploaded, for abort

    def commit(self) -> str:
        assert self._file is not None, "commit after commit or abort"
        try:
            self._file.flush()
            self._file.close()
            self._file = None
            location = self.store.upload(self.image_id, self.partial, self._segments)
        except OSError as exc:
            self.abort()
            raise translate_os_error(exc) from exc
        except BaseException:
            self.abort()
            raise
        self._segments = []
        self.partial.unlink(missing_ok=True)
        return location

    def abort(self) -> None:
        super().abort()
        if self._segments:
            segments, self._segments = self._segments, []
            try:
                self.store.delete_objects(self.store.segments_container, segments)
            except (StoreError, StoreFull) as exc:
                LOG.warning("segments of image %s stay in Swift: %s", self.image_id, exc)


class SwiftReader(io.RawIOBase):
    """An object read as a stream; ``seek`` reopens it with a Range."""

    def __init__(self, client: SwiftClient, path: str, size: int):
        self.client = client
        self.path = path
        self.size = size
        self.position = 0
        self._response: httpx.Response | None = None
        self._chunks: Iterator[bytes] | None = None
        self._left = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        target = max(base + offset, 0)
        if target != self.position:
            self._drop()
            self.position = target
        return self.position

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response, self._chunks, self._left = None, None, b""

    def _open(self) -> None:
        headers = {"Range": f"bytes={self.position}-"} if self.position else {}
        response = self.client.request("GET", self.path, headers=headers, stream=True)
        if response.status_code not in (200, 206):
            error = _fail(response, f"read {self.path}")
            response.close()
            raise error
        self._response = response
        self._chunks = response.iter_raw(CHUNK)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.position >= self.size or len(view) == 0:
            return 0
        for attempt in range(3):
            try:
                if not self._left:
                    if self._chunks is None:
                        self._open()
                    assert self._chunks is not None
                    self._left = next(self._chunks, b"")
                    if not self._left:
                        raise StoreError(
                            f"{self.path} ended at byte {self.position} of {self.size}"
                        )
                break
            except (httpx.HTTPError, StoreError) as exc:
                self._drop()  # resume from where the stream broke
                if attempt == 2:
                    raise OSError(f"cannot read {self.path} from object storage: {exc}") from exc
        count = min(len(view), len(self._left))
        view[:count] = self._left[:count]
        self._left = self._left[count:]
        self.position += count
        return count

    def close(self) -> None:
        self._drop()
        super().close()


class SwiftStore:
    """Image data in one container of one Swift account (see the module)."""

    def __init__(
        self,
        client: SwiftClient,
        *,
        container: str,
        segment_size: int,
        spool_dir: str | Path,
    ):
        self.client = client
        self.container = container
        self.segment_size = segment_size
        self.spool_dir = Path(spool_dir)
        self.max_file_size = MAX_FILE_SIZE
        self.max_segments = MAX_MANIFEST_SEGMENTS

    @property
    def segments_container(self) -> str:
        return f"{self.container}_segments"

    def check(self) -> None:
        """Authenticate, learn the cluster's limits, make the containers if missing."""
        self.spool_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        info = self.client.info()
        self.max_file_size = int(info.get("swift", {}).get("max_file_size", MAX_FILE_SIZE))
        slo = info.get("slo", {})
        self.max_segments = int(slo.get("max_manifest_segments", MAX_MANIFEST_SEGMENTS))
        if info and "slo" not in info:
            raise StoreError("the Swift proxy has no static large object support (slo)")
        if self.segment_size > self.max_file_size:
            raise StoreError(
                f"[image] swift_store_segment_size: {self.segment_size} is above the largest "
                f"object this Swift cluster takes ({self.max_file_size} bytes)"
            )
        for container in (self.container, self.segments_container):
            response = self.client.request("PUT", container)
            response.close()
            if response.status_code == 403:
                c = self.client.credentials
                raise StoreError(
                    f"Swift refused the user {c.username!r} container {container!r} (403): give "
                    f"it an operator role (member) on the project {c.project_name!r}"
                )
            if response.status_code not in (201, 202, 204):
                raise _fail(response, f"create the container {container}")

    # --- the Store interface -------------------------------------------------

    def writer(self, image_id: str) -> SwiftWriter:
        try:
            return SwiftWriter(self, image_id)
        except OSError as exc:
            raise translate_os_error(exc) from exc

    def location_for(self, image_id: str) -> str:
        return f"{SCHEME}{self.container}/{image_id}"

    def partials(self) -> list[tuple[str, Path]]:
        return [(p.name.removesuffix(".partial"), p) for p in self.spool_dir.glob("*.partial")]

    def open(self, location: str) -> BinaryIO:
        container, name = parse_location(location)
        path = f"{container}/{name}"
        response = self.client.request("HEAD", path)
        if response.status_code == 404:
            raise StoreError(f"image data missing at {location}")
        if response.status_code != 200:
            raise _fail(response, f"read {path}")
        size = int(response.headers.get("Content-Length", "0"))
        return cast(BinaryIO, io.BufferedReader(SwiftReader(self.client, path, size), CHUNK))

    def delete(self, location: str) -> None:
        """The object (its segments too, if a manifest), and segments no manifest lists."""
        container, name = parse_location(location)
        path = f"{container}/{name}"
        head = self.client.request("HEAD", path, params={"multipart-manifest": "get"})
        if head.status_code == 200:
            manifest = head.headers.get("X-Static-Large-Object", "").lower() == "true"
            params = {"multipart-manifest": "delete"} if manifest else None
            response = self.client.request(
                "DELETE", path, params=params, headers={"Accept": "application/json"}
            )
            if response.status_code not in (200, 204, 404):
                raise _fail(response, f"delete {path}")
            if manifest and response.status_code == 200:
                result = response.json()
                if result.get("Errors") or not str(result.get("Response Status", "")).startswith(
                    "200"
                ):
                    raise StoreError(f"object storage could not delete {path}: {result}")
        elif head.status_code != 404:
            raise _fail(head, f"delete {path}")
        # A commit cut short leaves segments without a manifest.
        segments = f"{container}_segments"
        self.delete_objects(segments, self.list_objects(segments, prefix=f"{name}/"))

    # --- helpers -------------------------------------------------------------

    def upload(self, image_id: str, source: Path, uploaded: list[str]) -> str:
        """Send the spooled ``source``; names of uploaded segments go to ``uploaded``."""
        size = source.stat().st_size
        if size <= self.segment_size:
            self._put(f"{self.container}/{image_id}", source, 0, size)
            return self.location_for(image_id)
        segment = max(self.segment_size, math.ceil(size / self.max_segments))
        if segment > self.max_file_size:
            raise StoreError(f"an image of {size} bytes is too large for this Swift cluster")
        manifest = []
        for index, offset in enumerate(range(0, size, segment)):
            name = f"{image_id}/{index:08d}"
            length = min(segment, size - offset)
            uploaded.append(name)
            etag = self._put(f"{self.segments_container}/{name}", source, offset, length)
            manifest.append(
                {"path": f"/{self.segments_container}/{name}", "etag": etag, "size_bytes": length}
            )
        body = json.dumps(manifest).encode()
        response = self.client.request(
            "PUT",
            f"{self.container}/{image_id}",
            params={"multipart-manifest": "put"},
            headers={"Content-Type": "application/octet-stream"},
            body=lambda: body,
        )
        response.close()
        if response.status_code != 201:
            raise _fail(response, f"store the manifest of image {image_id}")
        return self.location_for(image_id)

    def _put(self, path: str, source: Path, offset: int, length: int) -> str:
        """PUT ``length`` bytes of ``source`` from ``offset``; their MD5, checked."""
        digests: list[Any] = []

        def content() -> Iterator[bytes]:
            md5 = hashlib.md5(usedforsecurity=False)
            digests.append(md5)
            with open(source, "rb") as handle:
                handle.seek(offset)
                left = length
                while left > 0:
                    chunk = handle.read(min(CHUNK, left))
                    if not chunk:
                        raise StoreError(f"{source} is shorter than expected")
                    md5.update(chunk)
                    left -= len(chunk)
                    yield chunk

        response = self.client.request(
            "PUT",
            path,
            headers={"Content-Length": str(length), "Content-Type": "application/octet-stream"},
            body=content,
        )
        if response.status_code != 201:
            raise _fail(response, f"store {path}")
        response.close()
        expected = digests[-1].hexdigest()
        if response.headers.get("Etag", "").strip('"') != expected:
            raise StoreError(f"object storage stored {path} with another checksum")
        return str(expected)

    def list_objects(self, container: str, *, prefix: str = "") -> list[str]:
        names: list[str] = []
        marker = ""
        while True:
            response = self.client.request(
                "GET", container, params={"format": "json", "prefix": prefix, "marker": marker}
            )
            if response.status_code == 404:
                return names
            if response.status_code == 204:
                return names
            if response.status_code != 200:
                raise _fail(response, f"list {container}")
            page = [item["name"] for item in response.json()]
            if not page:
                return names
            names += page
            marker = page[-1]

    def delete_objects(self, container: str, names: list[str]) -> None:
        for name in names:
            response = self.client.request("DELETE", f"{container}/{name}")
            response.close()
            if response.status_code not in (204, 404):
                raise _fail(response, f"delete {container}/{name}")


def from_config(options: Any, authtoken: Any, staging_dir: Path) -> SwiftStore:
    """The store of ``[image] swift_store_*``; empty credentials are ``[image_authtoken]``'s."""
    credentials = ServiceCredentials(
        auth_url=options.swift_store_auth_url or authtoken.auth_url,
        username=options.swift_store_user or authtoken.username,
        password=options.swift_store_password or authtoken.password,
        project_name=options.swift_store_project_name or authtoken.project_name,
        user_domain_name=options.swift_store_user_domain_name or authtoken.user_domain_name,
        project_domain_name=(
            options.swift_store_project_domain_name or authtoken.project_domain_name
        ),
    )
    client = SwiftClient(
        credentials,
        region=options.swift_store_region_name,
        interface=options.swift_store_interface,
        endpoint=options.swift_store_endpoint,
        timeout=options.swift_store_timeout,
    )
    return SwiftStore(
        client,
        container=options.swift_store_container,
        segment_size=options.swift_store_segment_size,
        spool_dir=staging_dir / "swift-spool",
    )
