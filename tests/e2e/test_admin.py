"""Gateway management through the Worker: `/admin/gateways` behind ADMIN_TOKEN, forwarded to the
Cloudflare API (the simulator's) with CF_API_TOKEN; v4 envelopes come back as they are, and a
stored provider key's secret never does."""

from __future__ import annotations

import secrets

import pytest

from conftest import ADMIN_TOKEN, AGENT_TOKEN, GATEWAY_ID

SETTINGS = {
    "cache_ttl": 0,
    "cache_invalidate_on_update": False,
    "collect_logs": True,
    "rate_limiting_interval": 0,
    "rate_limiting_limit": 0,
    "authentication": True,
}


@pytest.fixture()
def admin(worker):
    with worker.client(token=ADMIN_TOKEN) as c:
        yield c


@pytest.mark.parametrize("token", [None, AGENT_TOKEN, "wrong"])
def test_admin_routes_need_the_admin_token(worker, token):
    with worker.client(token=token) as c:
        r = c.get("/admin/gateways")
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_api_key"


def test_admin_routes_are_off_without_an_admin_token(workers):
    with workers["unconfigured"].client(token="anything") as c:
        r = c.get("/admin/gateways")
    assert r.status_code == 404
    assert "ADMIN_TOKEN" in r.json()["error"]["message"]


def test_gateway_lifecycle_and_provider_keys(admin):
    gw = "e2e-admin-" + secrets.token_hex(4)
    key = "sk-stored-" + secrets.token_hex(16)

    listing = admin.get("/admin/gateways", params={"per_page": 100})
    assert listing.status_code == 200, listing.text
    assert listing.json()["success"] is True
    assert GATEWAY_ID in [g["id"] for g in listing.json()["result"]]

    created = admin.post("/admin/gateways", json={"id": gw, **SETTINGS})
    assert created.status_code == 200, created.text
    assert created.json()["result"]["authentication"] is True

    duplicate = admin.post("/admin/gateways", json={"id": gw, **SETTINGS})
    assert duplicate.status_code == 409
    assert duplicate.json()["success"] is False and duplicate.json()["errors"]

    updated = admin.put(f"/admin/gateways/{gw}", json={**SETTINGS, "cache_ttl": 300})
    assert updated.status_code == 200, updated.text
    assert admin.get(f"/admin/gateways/{gw}").json()["result"]["cache_ttl"] == 300

    stored = admin.post(f"/admin/gateways/{gw}/provider_configs", json={"provider_slug": "openai", "secret": key})
    assert stored.status_code == 200, stored.text
    keys = admin.get(f"/admin/gateways/{gw}/provider_configs")
    assert keys.status_code == 200
    [item] = keys.json()["result"]
    assert item["provider_slug"] == "openai"
    assert item["secret_preview"].startswith(key[:4])
    for r in (stored, keys):
        assert key not in r.text and "secret\"" not in r.text.replace("secret_", "")

    deleted = admin.delete(f"/admin/gateways/{gw}")
    assert deleted.status_code == 200
    gone = admin.get(f"/admin/gateways/{gw}")
    assert gone.status_code == 404
    assert gone.json()["errors"][0]["code"] == 7002


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("GET", "/admin/gateways/Not_Valid", None, 400, "invalid_request"),
        ("POST", "/admin/gateways", b"not json", 400, "invalid_json"),
        ("POST", "/admin/gateways", b"[]", 400, "invalid_json"),
        ("PATCH", "/admin/gateways/x", None, 405, "method_not_allowed"),
        ("GET", "/admin/gateways/x/y", None, 404, "not_found"),
    ],
)
def test_bad_admin_requests(admin, sim, method, path, body, status, code):
    r = admin.request(method, path, content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


def test_cloudflare_validation_errors_pass_through(admin):
    r = admin.post("/admin/gateways", json={"id": "e2e-missing-fields"})
    assert r.status_code == 400
    body = r.json()
    assert body["success"] is False
    assert body["errors"][0]["code"] == 7001
