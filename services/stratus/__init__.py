"""Stratus: OpenStack-compatible private cloud services."""
