#!/usr/bin/env bash
# Make this checkout resolvable as the Ansible collection stratus.cloud:
#   collections/ansible_collections/stratus/cloud -> the repository root
# ansible.cfg lists ./collections in collections_path, so playbooks run from
# the checkout use the roles being edited, with no `ansible-galaxy install`.
# Idempotent; prints nothing when the link is already right.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
link=$root/collections/ansible_collections/stratus/cloud
target=../../..

if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
  exit 0
fi
if [ -e "$link" ] && [ ! -L "$link" ]; then
  echo "link-collection: $link exists and is not a symlink; remove it first" >&2
  exit 1
fi
mkdir -p "$(dirname "$link")"
ln -sfn "$target" "$link"
echo "link-collection: $link -> $target"
