"""Other services trusting Stratus identity.

keystonemiddleware's ``auth_token`` (what OpenStack Swift runs) and Stratus's
own ``RemoteValidator`` validate real user tokens against a real identity
server with a service user, and stop accepting a revoked token once their
cache expires.
"""

from __future__ import annotations

import time

import pytest
import webob
import webob.dec

from stratus.common import errors
from stratus.common.auth import RemoteValidator, RequestContext, ServiceCredentials
from tests.api.helpers import admin_token, revoke_token


@pytest.fixture
def protected_app(identity_server):
    from keystonemiddleware import auth_token

    seen = {}

    @webob.dec.wsgify
    def app(request):
        seen.update({k: v for k, v in request.headers.items() if k.startswith("X-")})
        return webob.Response("ok")

    conf = {
        "www_authenticate_uri": identity_server.auth_url,
        "auth_url": identity_server.auth_url,
        "auth_type": "password",
        "username": "admin",
        "password": identity_server.admin_password,
        "project_name": "admin",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "delay_auth_decision": "false",
        "token_cache_time": "1",
        "include_service_catalog": "true",
        "service_token_roles_required": "true",
    }
    return auth_token.AuthProtocol(app, conf), seen


def test_keystonemiddleware_accepts_a_stratus_token(identity_server, protected_app):
    app, seen = protected_app
    token = admin_token(identity_server)
    response = webob.Request.blank("/", headers={"X-Auth-Token": token}).get_response(app)
    assert response.status_int == 200
    assert seen["X-Identity-Status"] == "Confirmed"
    assert seen["X-Project-Name"] == "admin"
    assert "admin" in seen["X-Roles"].split(",")
    assert seen["X-User-Domain-Id"] == "default"
    assert seen["X-Service-Catalog"]


def test_keystonemiddleware_refuses_bad_and_revoked_tokens(identity_server, protected_app):
    app, _ = protected_app
    bad = webob.Request.blank("/", headers={"X-Auth-Token": "nonsense"}).get_response(app)
    assert bad.status_int == 401
    assert "Keystone uri" in bad.headers.get("WWW-Authenticate", "")
    token = admin_token(identity_server)
    assert (
        webob.Request.blank("/", headers={"X-Auth-Token": token}).get_response(app).status_int
        == 200
    )
    revoke_token(identity_server, token)
    time.sleep(1.2)  # token_cache_time = 1 s
    assert (
        webob.Request.blank("/", headers={"X-Auth-Token": token}).get_response(app).status_int
        == 401
    )


def test_remote_validator_caches_and_then_sees_revocation(identity_server):
    validator = RemoteValidator(
        ServiceCredentials(
            identity_server.url, "admin", identity_server.admin_password, project_name="admin"
        ),
        # Long enough that a loaded machine still answers from the cache
        # before it expires (0.5 s was not, under load).
        cache_ttl=4,
    )
    token = admin_token(identity_server)
    context = RequestContext.from_token(validator.validate(token))
    assert context.project_name == "admin"
    assert "admin" in context.roles and context.is_admin_project
    revoke_token(identity_server, token)
    # Served from the cache for at most cache_ttl ...
    assert validator.validate(token)
    time.sleep(4.2)
    with pytest.raises(errors.Unauthorized):
        validator.validate(token)
    with pytest.raises(errors.Unauthorized):
        validator.validate("garbage")


def test_remote_validator_with_wrong_service_credentials(identity_server):
    validator = RemoteValidator(
        ServiceCredentials(identity_server.url, "admin", "wrong-password", project_name="admin")
    )
    with pytest.raises(errors.ServiceUnavailable):
        validator.validate(admin_token(identity_server))
