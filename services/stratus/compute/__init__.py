"""Compute: flavors, key pairs, quotas and servers scheduled onto hypervisors (Nova v2.1)."""
