"""Instance metadata: what a guest learns about itself, over HTTP and on a config drive.

* ``content``: ``InstanceMetadata``, the typed description of one instance,
  and the documents made from it (``meta_data.json``, ``network_data.json``,
  the EC2 ``meta-data`` tree);
* ``tree``: those documents arranged as the metadata service serves them
  (OpenStack and EC2 trees, with their directory listings) and as a config
  drive carries them;
* ``config_drive``: the ISO 9660 image labelled ``config-2``;
* ``service`` and ``app``: the HTTP service behind the network agent's
  metadata proxy, which trusts a request only when the proxy signed it.

The instance itself comes from an injected lookup (``service.InstanceLookup``)
that the compute service supplies from its database.
"""
