"""The network agent: makes a host's plumbing what the network API says.

Every network and compute host runs one. It reads the API (as the network
service's own user), works out what this host must carry (``state``), and
converges the kernel to it with pyroute2, nftables and dnsmasq; it removes
what no longer belongs, so a restart or a hand-made change heals itself.
"""
