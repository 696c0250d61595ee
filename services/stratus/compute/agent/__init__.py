"""The compute agent: on every hypervisor host, it carries out its servers' tasks."""
