"""The network service: Neutron v2.0 API (controllers) and its agent (hosts)."""
