"""The image service: a Glance v2 compatible registry of disk and server images."""
