#!/usr/bin/env bash
# Prepare this machine (Debian 12, as root) for development, tests and the
# all-in-one rollout: Debian packages, then a virtualenv in .venv holding the
# services package (editable), Ansible and the test tools.
#
# Idempotent: a second run only checks. STRATUS_SKIP_APT=1 skips apt for
# machines where the packages are known to be present.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${STRATUS_VENV:-$here/.venv}

apt_packages=(
  python3 python3-venv python3-dev gcc make git
  debootstrap systemd-container nftables iproute2 openssh-client rsync
  postgresql postgresql-client
  qemu-utils
  # Swift's ring library: stratus.cloud.swift_ring builds the object store's
  # rings with it (tests run the module with /usr/bin/python3).
  python3-swift
  # A local Swift cluster for the object storage API tests (tests/swift_cluster.py):
  # the proxy's keystonemiddleware auth_token and its memcached.
  python3-keystonemiddleware memcached
  # netlink for stratus.cloud.bridge, vlan and tunnel (tests run them with /usr/bin/python3).
  python3-pyroute2
  # ping: the host networking tests prove an overlay carries traffic.
  iputils-ping
  # The network agent: DHCP and DNS per tenant network, IPv6 router
  # advertisements, and its tests' clients.
  dnsmasq-base dnsmasq-utils radvd isc-dhcp-client  # -utils: dhcp_release(6) of stale leases
  # A stock Debian kernel under QEMU for the VLAN and GRE tests
  # (tests/stock_kernel.py): the emulator, busybox for its initramfs,
  # kmod for depmod and modprobe.
  qemu-system-x86 busybox-static kmod
  # The test image (scripts/build_test_image.py): a FAT disk that syslinux boots.
  syslinux syslinux-common mtools dosfstools
  # libvirt for stratus.cloud.libvirt_domain and the compute agent: libvirtd
  # with its QEMU driver, and libvirt-daemon-system for the libvirt-qemu user
  # (its postinst creates it; the QEMU driver will not start without it, even
  # when qemu.conf runs guests as root) and libvirt's directories, over which
  # tests/libvirtd.py mounts the private daemon's own.
  libvirt-daemon-system libvirt-daemon-driver-qemu
  # The libvirt driver's domain XML checked against libvirt's schemas
  # (virt-xml-validate of libvirt-clients runs xmllint).
  libvirt-clients libxml2-utils
  # Building libvirt-python (an sdist) into .venv, the extra "compute":
  # its headers and pkg-config to find them (gcc and python3-dev are above).
  libvirt-dev pkg-config
)

missing=()
if [ "${STRATUS_SKIP_APT:-0}" != 1 ]; then
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# Playbooks run from the checkout resolve the collection stratus.cloud here.
"$here/scripts/link-collection.sh"

stamp=$venv/.stratus-bootstrap
want=$(cat "$here/pyproject.toml" "$here/requirements/dev.txt" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
  echo "bootstrap: creating $venv"
  /usr/bin/python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --upgrade pip setuptools wheel
"$venv/bin/pip" install -q -e "${here}[postgresql,compute]" -r "$here/requirements/dev.txt"
echo "$want" > "$stamp"
echo "bootstrap: $venv is ready"
