"""Tests of the network agent on simulated hosts (see conftest)."""
