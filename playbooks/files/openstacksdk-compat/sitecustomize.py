"""Let the openstack.cloud modules run on openstacksdk 4.15 and newer.

openstack.cloud 2.5 (the one the ``ansible`` 12 package bundles) reads
``openstack.version.__version__`` without importing ``openstack.version``,
which openstacksdk stopped importing itself in 4.15 (openstack.cloud 2.6
fixed it). playbooks/demo.yml puts this directory on the modules'
PYTHONPATH, so Python imports this file at start-up and the attribute is
there. Harmless with any other openstacksdk version; remove it once the
bundled collection is 2.6 or newer.
"""

import contextlib
import warnings

with contextlib.suppress(ImportError), warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import openstack.version  # noqa: F401
