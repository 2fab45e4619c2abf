"""GET /healthz and GET /v1/models."""

from conftest import REVIEW, SECRETS


def test_health_ok_names_nothing_missing(worker):
    with worker.client(token=None) as c:
        r = c.get("/healthz")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok"
    assert h["missing"] == [] and h["invalid"] == [] and h["config_errors"] == []
    assert set(h["aliases"]) >= {"triage", "review", "default"}
    for s in SECRETS:
        assert s not in r.text


def test_health_names_what_is_missing_and_invalid(workers):
    with workers["unconfigured"].client(token=None) as c:
        r = c.get("/healthz")
    assert r.status_code == 503
    h = r.json()
    assert h["status"] == "misconfigured"
    assert set(h["missing"]) == {"AGENT_TOKEN", "CF_ACCOUNT_ID", "AI_GATEWAY_ID", "CF_AIG_TOKEN"}
    # Its AGENT_TOKENS holds a raw token where the hash belongs: named, never shown.
    assert any(p.startswith("AGENT_TOKENS") and "not a SHA-256" in p for p in h["invalid"]), h["invalid"]
    assert REVIEW not in r.text


def test_models_needs_auth_and_lists_aliases_then_models(worker):
    with worker.client(token=None) as c:
        assert c.get("/v1/models").status_code == 401
    with worker.client() as c:
        r = c.get("/v1/models")
    assert r.status_code == 200
    listing = r.json()
    assert listing["object"] == "list"
    ids = [m["id"] for m in listing["data"]]
    # The aliases, the shipped ones and the suite's own (conftest.SUITE_ROUTES), in order.
    assert ids[:7] == ["default", "guarded", "retiring", "review", "ruled", "split", "triage"]
    assert ids[7] == "google-ai-studio/gemini-3.5-flash-lite"
    assert len(ids) == len(set(ids))
    assert all(m["object"] == "model" for m in listing["data"])
