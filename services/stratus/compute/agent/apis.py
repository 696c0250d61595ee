"""What the compute agent reads from the image and network APIs.

The libvirt driver needs two things from its neighbours, both read with the
agent's own service user (``[compute_agent_authtoken]``, role ``service``):

- an image's document and data (``GET /v2/images/{id}`` and ``.../file``),
  streamed to disk and checked against the image's ``os_hash_value`` (or
  its MD5 ``checksum`` when the hash algorithm is unknown here) and size;
  the image service lets the ``service`` role show and download every
  project's images (``image:get_image``, ``image:download_image``,
  ``image:see_all`` in services/stratus/image/policies.py);
- the subnets of a server's fixed IPs (``GET /v2.0/subnets?id=...``), for
  the network_data.json of its config drive (the ``service`` role sees
  every project's subnets: ``network:see_all``).

Server snapshots go the other way: the compute API makes a queued image in
the user's project, and the agent uploads the disk into it
(``PUT /v2/images/{id}/file``; ``image:upload_image`` allows the service
role) or deletes it when the snapshot failed (``image:delete_image``). For
interfaces attached to a running server the agent binds the port to its
host, and for those detached it deletes the port made for the server or
unbinds the user's (``network:set_port_binding`` is the service's).

One login serves both (``service_apis``): the token's catalog has both
endpoints; ``[compute_agent] image_api_url`` / ``network_api_url`` override
them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Protocol

import httpx

from stratus.common.auth import credentials_from_section
from stratus.common.service_client import ApiError, ServiceClient, error_message
from stratus.compute.agent import settings
from stratus.compute.agent.driver import DriverError

CHUNK = 1 << 20
UPLOAD_TIMEOUT = 3600.0  # seconds the image service may take to take in and check a snapshot


class SubnetSource(Protocol):
    """Where the subnets of a server's fixed IPs are read."""

    def subnets(self, subnet_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """Subnet ID -> its Neutron v2.0 document, for those that exist."""
        ...


class ImageClient(ServiceClient):
    service_type = "image"
    section = settings.SECTION


class NetworkClient(ServiceClient):
    service_type = "network"
    section = settings.SECTION


def service_apis(config: Any) -> tuple[ImageClient, NetworkClient]:
    """Clients of the image and network APIs sharing one login of the agent's user."""
    options = config.section(settings.SECTION)
    credentials = credentials_from_section(config.section(settings.AUTHTOKEN_SECTION))
    common = {
        "interface": options.interface,
        "region": options.region_name,
        "timeout": options.timeout,
    }
    image = ImageClient(credentials, api_url=options.image_api_url, **common)
    network = NetworkClient(credentials, api_url=options.network_api_url, http=image.http, **common)
    network.login = image.login  # one token for both
    return image, network


class ImageApi:
    """``ImageSource`` of the image API (see the module)."""

    def __init__(self, client: ServiceClient):
        self.client = client

    def _show(self, image_id: str, missing: str) -> dict[str, Any]:
        """The image's document; DriverError saying `missing` on 404, or why not."""
        try:
            response = self.client.request("GET", f"/v2/images/{image_id}")
        except ApiError as exc:
            raise DriverError(f"Image {image_id} cannot be read: {exc}") from None
        if response.status_code == 404:
            raise DriverError(f"Image {image_id} {missing}")
        if response.status_code != 200:
            raise DriverError(
                f"Image {image_id} cannot be read: the image service answered "
                f"{response.status_code}: {error_message(response)}"
            )
        image: dict[str, Any] = response.json()
        return image

    def fetch(self, image_id: str, dest: Path) -> dict[str, Any]:
        image = self._show(image_id, "was not found in the image service.")
        if image.get("status") != "active":
            raise DriverError(f"Image {image_id} is {image.get('status')}, not active.")
        try:
            self._download(image, dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return image

    def _download(self, image: dict[str, Any], dest: Path) -> None:
        image_id = image["id"]
        hashers = {"md5": hashlib.md5(usedforsecurity=False)}
        algo = image.get("os_hash_algo")
        if image.get("os_hash_value") and algo in hashlib.algorithms_available:
            hashers[algo] = hashlib.new(algo)
        size = 0
        for renew in (False, True):
            try:
                token, base = self.client.session(force=renew)
                with self.client.http.stream(
                    "GET", f"{base}/v2/images/{image_id}/file", headers={"X-Auth-Token": token}
                ) as response:
                    if response.status_code == 401 and not renew:
                        continue
                    if response.status_code != 200:
                        response.read()
                        raise DriverError(
                            f"The data of image {image_id} cannot be downloaded: the image "
                            f"service answered {response.status_code}: {error_message(response)}"
                        )
                    with dest.open("xb") as handle:
                        for chunk in response.iter_bytes(CHUNK):
                            handle.write(chunk)
                            size += len(chunk)
                            for hasher in hashers.values():
                                hasher.update(chunk)
                        handle.flush()
                        os.fsync(handle.fileno())
            except (ApiError, httpx.HTTPError) as exc:
                raise DriverError(
                    f"The data of image {image_id} cannot be downloaded: {exc}"
                ) from None
            break
        if image.get("size") is not None and size != image["size"]:
            raise DriverError(
                f"The data of image {image_id} is {size} bytes; the image says {image['size']}."
            )
        if algo in hashers and image.get("os_hash_value"):
            expected, got = image["os_hash_value"], hashers[algo].hexdigest()
        elif image.get("checksum"):
            expected, got = image["checksum"], hashers["md5"].hexdigest()
        else:
            return
        if expected != got:
            raise DriverError(f"The data of image {image_id} does not match its checksum.")

    # --- snapshots -------------------------------------------------------------

    def status(self, image_id: str) -> str:
        image = self._show(image_id, "was deleted before the snapshot was uploaded.")
        return str(image.get("status"))

    def upload(self, image_id: str, path: Path) -> None:
        """The file's data into the queued image (which then becomes active)."""
        size = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    yield chunk

        for renew in (False, True):
            try:
                token, base = self.client.session(force=renew)
                response = self.client.http.put(
                    f"{base}/v2/images/{image_id}/file",
                    content=chunks(),
                    headers={
                        "X-Auth-Token": token,
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(size),
                    },
                    timeout=httpx.Timeout(60.0, read=UPLOAD_TIMEOUT, write=UPLOAD_TIMEOUT),
                )
            except (ApiError, httpx.HTTPError) as exc:
                raise DriverError(
                    f"The snapshot cannot be uploaded to image {image_id}: {exc}"
                ) from None
            if response.status_code == 401 and not renew:
                continue
            if response.status_code != 204:
                raise DriverError(
                    f"The snapshot cannot be uploaded to image {image_id}: the image service "
                    f"answered {response.status_code}: {error_message(response)}"
                )
            return

    def delete(self, image_id: str) -> None:
        try:
            response = self.client.request("DELETE", f"/v2/images/{image_id}")
        except ApiError as exc:
            raise DriverError(f"Image {image_id} cannot be deleted: {exc}") from None
        if response.status_code not in (204, 404):
            raise DriverError(
                f"Image {image_id} cannot be deleted: the image service answered "
                f"{response.status_code}: {error_message(response)}"
            )


class NetworkApi:
    """``SubnetSource`` of the network API, and the ports of interfaces."""

    def __init__(self, client: ServiceClient):
        self.client = client

    def subnets(self, subnet_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        if not subnet_ids:
            return {}
        try:
            response = self.client.request(
                "GET", "/v2.0/subnets", params=[("id", i) for i in sorted(set(subnet_ids))]
            )
        except ApiError as exc:
            raise DriverError(f"The server's subnets cannot be read: {exc}") from None
        if response.status_code != 200:
            raise DriverError(
                "The server's subnets cannot be read: the network service answered "
                f"{response.status_code}: {error_message(response)}"
            )
        return {s["id"]: s for s in response.json().get("subnets", [])}

    def _port(self, port_id: str, values: dict[str, Any] | None) -> None:
        try:
            if values is None:
                response = self.client.request("DELETE", f"/v2.0/ports/{port_id}")
            else:
                response = self.client.request(
                    "PUT", f"/v2.0/ports/{port_id}", json={"port": values}
                )
        except ApiError as exc:
            raise DriverError(f"Port {port_id} cannot be changed: {exc}") from None
        if response.status_code not in (200, 204, 404) or (
            response.status_code == 404 and values is not None and values.get("binding:host_id")
        ):
            raise DriverError(
                f"Port {port_id} cannot be changed: the network service answered "
                f"{response.status_code}: {error_message(response)}"
            )

    def bind(self, port_id: str, host: str) -> None:
        self._port(port_id, {"binding:host_id": host})

    def release(self, port_id: str, owned: bool) -> None:
        """Delete the port (made for the server) or unbind it (the user's); gone is done."""
        if owned:
            self._port(port_id, None)
        else:
            self._port(port_id, {"device_id": "", "device_owner": "", "binding:host_id": ""})
