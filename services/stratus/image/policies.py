"""The image service's default RBAC rules (Glance's secure defaults).

- the *cloud admin* may do everything and sees every image; the *cloud
  reader* sees every image;
- a *project member* manages the images its project owns, shares them with
  other projects and accepts or rejects what is shared with it;
- a *project reader* sees and downloads what its project may see.

Which images a project *may see* (public, community, its own, shared with it)
is decided by the handlers' queries (``image:see_all`` sees every image);
these rules decide what it may *do*.
Only cloud admins publish public images and download deactivated ones, as
in Glance; the owner's members (de)activate their images. Targets:
``target.owner``, ``target.visibility``, ``target.member_id``; the operator
overrides any rule from ``policy_file``.
"""

from stratus.common.policy import BASE_RULES, Rule

_READER = "rule:cloud_reader or role:reader"
_OWNER_MEMBER = "rule:cloud_admin or (role:member and project_id:%(target.owner)s)"
# Compute's service user (role ``service``) shows and downloads the image of
# every server its agents build, whatever the image's project and visibility
# (the user's right to boot it was checked by the compute API, with the
# user's token, when the server was created). It does not list images.
# For a server's snapshot (``createImage``) the compute API creates the image
# with the user's token, in the user's project; the host's agent then uploads
# the disk into it and, when the snapshot fails, deletes it: the service
# role may upload data to and delete any image, and nothing else (it cannot
# create, change, share or publish one).
_SERVICE = " or rule:service_role"

RULES: list[Rule] = [
    *BASE_RULES,
    Rule("image:get_images", _READER, "List images."),
    Rule(
        "image:see_all",
        "rule:cloud_reader" + _SERVICE,
        "See every project's images (cloud readers, and compute's agents for their servers).",
    ),
    Rule("image:get_image", _READER + _SERVICE, "Show an image the project can see."),
    Rule("image:add_image", _OWNER_MEMBER, "Create an image owned by target.owner."),
    Rule("image:modify_image", _OWNER_MEMBER, "Update an image."),
    Rule(
        "image:delete_image",
        _OWNER_MEMBER + _SERVICE,
        "Delete an image (compute's agents: a server snapshot that failed).",
    ),
    Rule(
        "image:upload_image",
        _OWNER_MEMBER + _SERVICE,
        "Upload, stage or import image data (compute's agents: server snapshots).",
    ),
    Rule(
        "image:download_image",
        _READER + _SERVICE,
        "Download the data of an image the project sees.",
    ),
    Rule("image:publicize_image", "rule:cloud_admin", "Make an image public."),
    Rule("image:communitize_image", _OWNER_MEMBER, "Make an image a community image."),
    Rule("image:set_image_owner", "rule:cloud_admin", "Create or move an image to any owner."),
    Rule("image:deactivate", _OWNER_MEMBER, "Deactivate an image."),
    Rule("image:reactivate", _OWNER_MEMBER, "Reactivate an image."),
    Rule("image:add_member", _OWNER_MEMBER, "Share an image with a project."),
    Rule("image:delete_member", _OWNER_MEMBER, "Stop sharing an image with a project."),
    Rule("image:get_members", _READER, "List the members of an image."),
    Rule("image:get_member", _READER, "Show a member of an image."),
    Rule(
        "image:modify_member",
        "rule:cloud_admin or (role:member and project_id:%(target.member_id)s)",
        "Accept or reject an image shared with the project.",
    ),
    Rule("image:get_usage", _READER, "Show the project's image quota usage."),
]
