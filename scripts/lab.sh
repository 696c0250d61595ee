#!/usr/bin/env bash
# Lab hosts on this machine: systemd-nspawn containers with systemd as PID 1,
# reachable over SSH, that the collection deploys onto.
#
#   scripts/lab.sh up   [INVENTORY] [ANSIBLE-PLAYBOOK ARGS...]   create and boot the hosts
#   scripts/lab.sh down [INVENTORY] [ANSIBLE-PLAYBOOK ARGS...]   stop and remove them
#   scripts/lab.sh purge                                         remove every lab host,
#                                                                the lab network and the cached root
#
# INVENTORY defaults to inventories/lab (lab1..lab3); inventories/aio gives
# aio1. Every host of the inventory with `stratus_lab_address` is a lab host.
# Runs as root (or through sudo) with the virtualenv's ansible-playbook.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${STRATUS_VENV:-$root/.venv}
playbook_bin=$venv/bin/ansible-playbook

usage() {
  sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
command=$1
shift
inventory=inventories/lab
if [ $# -ge 1 ] && [[ $1 != -* ]]; then
  inventory=$1
  shift
fi

if [ ! -x "$playbook_bin" ]; then
  echo "lab.sh: $playbook_bin is missing; run scripts/bootstrap.sh first" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" != 0 ]; then
  sudo=(sudo --preserve-env=ANSIBLE_CONFIG,ANSIBLE_FORCE_COLOR)
fi

cd "$root"
export ANSIBLE_CONFIG=$root/ansible.cfg
if [ -x scripts/link-collection.sh ]; then
  scripts/link-collection.sh
fi

case $command in
  up)
    exec "${sudo[@]}" "$playbook_bin" -i "$inventory" playbooks/lab.yml "$@"
    ;;
  down)
    exec "${sudo[@]}" "$playbook_bin" -i "$inventory" playbooks/lab-destroy.yml "$@"
    ;;
  purge)
    exec "${sudo[@]}" "$playbook_bin" -i "$inventory" playbooks/lab-destroy.yml \
      -e stratus_lab_destroy_all=true -e stratus_lab_purge_cache=true "$@"
    ;;
  *)
    usage
    ;;
esac
