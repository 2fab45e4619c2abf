"""Scoped tokens (`AGENT_TOKENS`), end to end: a token bound to an agent and repository patterns is
answered as that agent and repository (the ledger's row and AI Gateway's `cf-aig-metadata` say
so), on the chat route and on the native routes; a header that disagrees is 403
`token_scope_mismatch` and nothing reaches AI Gateway; an unknown token (or the stored hash) is
401; AGENT_TOKEN works as before; and the raw scoped token never reaches AI Gateway or a
response (nor a log line: the session's secret scan holds the tokens and their hashes).

Deployments of scoped tokens alone, or of a map that is invalid, are settings: unit tests of
`gateway_core::config` (`scoped_tokens_alone_are_a_configuration`,
`an_invalid_token_map_is_named_and_accepts_no_scoped_token`) and of `request::authenticate`;
/healthz naming an invalid map is test_health_models.py's."""

from __future__ import annotations

import json
import time
import uuid

import anthropic
import pytest

import conftest
from conftest import AGENT_TOKEN, REVIEW, TRIAGE, sha256
from helpers import CHAT, GEMINI, body, ledger_rows, recording_client2


@pytest.fixture()
def tokens(workers):
    """The session's Worker with AGENT_TOKEN and the scoped tokens (conftest.SCOPED_TOKENS)."""
    return workers["tokens"]


def chat(worker, token: str, headers: dict | None = None, **kw):
    with worker.client(token=token) as c:
        return c.post(CHAT, json=body(model=GEMINI, **kw), headers=headers or {})


def metadata_of(sim) -> dict:
    [call] = sim.requests()
    return json.loads(call["headers"]["cf-aig-metadata"])


def ledger_row(worker, request_id: str) -> dict:
    rows = ledger_rows(worker, request_id)
    assert rows, f"no ledger row for {request_id}"
    return rows[0]


def assert_never_sent_upstream(sim, *tokens: str) -> None:
    for call in sim.requests():
        flat = repr(call["headers"]) + call["query"] + call["path"]
        for token in tokens:
            assert token not in flat, "a scoped token reached AI Gateway"


def assert_mismatch(r, says: str) -> None:
    assert r.status_code == 403, r.text
    err = r.json()["error"]
    assert (err["code"], err["type"]) == ("token_scope_mismatch", "permission_error"), err
    assert says in err["message"], err["message"]
    assert REVIEW not in r.text and TRIAGE not in r.text


# --- the chat route ------------------------------------------------------------------------------


def test_a_scoped_token_is_answered_as_its_agent_and_repository(tokens, sim):
    r = chat(tokens, REVIEW, {"x-github-repository": "octo-org/app"})
    assert r.status_code == 200, r.text
    meta = metadata_of(sim)
    assert (meta["agent"], meta["repo"]) == ("ReviewAgent", "octo-org/app"), meta
    row = ledger_row(tokens, r.headers["x-gateway-request-id"])
    assert (row["agent"], row["repository"]) == ("ReviewAgent", "octo-org/app"), row
    assert_never_sent_upstream(sim, REVIEW)

    # Naming its own agent, and an exact repository of its list, is fine too.
    sim.reset()
    r = chat(tokens, REVIEW, {"x-agent-name": "ReviewAgent", "x-github-repository": "acme/app"})
    assert r.status_code == 200, r.text
    assert metadata_of(sim)["repo"] == "acme/app"


def test_a_token_bound_to_an_agent_only_takes_any_repository(tokens, sim):
    r = chat(tokens, TRIAGE, {"x-github-repository": "else/where"}, stream=True)
    assert r.status_code == 200, r.text
    assert "data: [DONE]" in r.text
    meta = metadata_of(sim)
    assert (meta["agent"], meta["repo"]) == ("TriagingAgent", "else/where"), meta
    row = ledger_row(tokens, r.headers["x-gateway-request-id"])
    assert (row["agent"], row["repository"]) == ("TriagingAgent", "else/where"), row


@pytest.mark.parametrize("headers, says", [
    ({"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/app"}, "belongs to agent `ReviewAgent`"),
    ({"x-github-repository": "acme/other"}, "`acme/other` is outside this token's repositories"),
    ({"x-github-repository": "Octo-Org2/app"}, "`octo-org2/app` is outside"),
    ({"x-github-repository": "octo-org2/app"}, "outside"),
    ({}, "send the repository as `x-github-repository"),
])
def test_a_header_that_disagrees_with_the_token_is_refused(tokens, sim, headers, says):
    r = chat(tokens, REVIEW, headers)
    assert_mismatch(r, says)
    assert sim.requests() == [], "a refused call never reaches AI Gateway"


def test_a_repository_is_one_whatever_its_case(tokens, sim):
    # GitHub's names match case-insensitively: the pattern matches, and the call is accounted to
    # the one spelling every scope, the ledger and AI Gateway's metadata use.
    r = chat(tokens, REVIEW, {"x-github-repository": "Octo-Org/App"})
    assert r.status_code == 200, r.text
    assert metadata_of(sim)["repo"] == "octo-org/app"
    row = ledger_row(tokens, r.headers["x-gateway-request-id"])
    assert row["repository"] == "octo-org/app", row


def test_unknown_tokens_and_the_stored_hash_are_401(tokens, sim):
    for token in ["agt-not-a-token", sha256(REVIEW), REVIEW[:-1], REVIEW + "x"]:
        r = chat(tokens, token, {"x-github-repository": "octo-org/app"})
        assert r.status_code == 401, (token[:8], r.text)
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert sim.requests() == []


def test_agent_token_still_names_any_caller(tokens, sim):
    r = chat(tokens, AGENT_TOKEN, {"x-agent-name": "SomeAgent", "x-github-repository": "any/repo"})
    assert r.status_code == 200, r.text
    meta = metadata_of(sim)
    assert (meta["agent"], meta["repo"]) == ("SomeAgent", "any/repo"), meta


def test_models_and_limits_take_a_scoped_token(tokens):
    for token in (REVIEW, TRIAGE):
        with tokens.client(token=token) as c:
            assert c.get("/v1/models").status_code == 200
            assert c.get("/limits").status_code == 200
    with tokens.client(token="agt-not-a-token") as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/limits").status_code == 401


def test_a_scoped_token_echoed_by_the_upstream_is_redacted(tokens, sim):
    # Only a hash of it is configured: the Worker redacts the token as this request presented it.
    sim.fault("google-ai-studio", {"kind": "status", "status": 400,
                                   "body": {"error": {"message": f"bad key {REVIEW} in request"}}})
    r = chat(tokens, REVIEW, {"x-github-repository": "octo-org/app"})
    assert r.status_code == 400, r.text
    assert REVIEW not in r.text
    assert "bad key [redacted] in request" in r.json()["error"]["message"]


# --- /limits --------------------------------------------------------------------------------------


def limits(worker, token: str, **params):
    with worker.client(token=token) as c:
        return c.get("/limits", params=params)


def limits_once(worker, token: str, ready) -> dict:
    """`/limits` as `token` sees it, once `ready(listing)` holds (rows are written after answers)."""
    deadline = time.time() + 15
    while True:
        r = limits(worker, token)
        assert r.status_code == 200, r.text
        listing = r.json()
        if ready(listing) or time.time() > deadline:
            return listing
        time.sleep(0.3)


def test_a_scoped_token_reads_only_its_own_limits(tokens):
    # Four callers today: each token, AGENT_TOKEN naming an agent and repository of its own.
    mine, theirs, shared = f"octo-org/mine-{uuid.uuid4().hex[:8]}", f"else/theirs-{uuid.uuid4().hex[:8]}", "shared/repo"
    assert chat(tokens, REVIEW, {"x-github-repository": mine}).status_code == 200
    assert chat(tokens, TRIAGE, {"x-github-repository": theirs}).status_code == 200
    assert chat(tokens, AGENT_TOKEN, {"x-agent-name": "SomeAgent", "x-github-repository": shared}).status_code == 200
    assert chat(tokens, AGENT_TOKEN, {"x-agent-name": "SomeAgent", "x-github-repository": "octo-org/someones"}).status_code == 200

    def names(listing):
        return {(s["scope"], s["name"]) for s in listing["scopes"]}

    everything = limits_once(tokens, AGENT_TOKEN, lambda l: {("repository", theirs), ("repository", shared)} <= names(l))
    assert {("repository", mine), ("agent", "TriagingAgent"), ("agent", "SomeAgent")} <= names(everything)

    review = limits_once(tokens, REVIEW, lambda l: ("repository", mine) in names(l))
    # Its agent; its repositories (those of `octo-org/*` used today by anyone, the one configured by
    # name, and `acme/app`, named exactly); their owners' totals; every provider.
    assert ("agent", "ReviewAgent") in names(review)
    assert {("repository", mine), ("repository", "octo-org/someones"), ("repository", "octo-org/configured"),
            ("repository", "acme/app"), ("owner", "octo-org"), ("owner", "acme")} <= names(review)
    for scope, name in names(review):
        assert (scope, name) == ("agent", "ReviewAgent") or scope != "agent", name
        if scope == "repository":
            assert name.startswith("octo-org/") or name == "acme/app", name
    assert len(review["providers"]) == len(everything["providers"])
    # A scope nobody used today (only configured by name) is answered from its configuration.
    unused = next(s for s in review["scopes"] if s["name"] == "octo-org/configured")
    assert (unused["spent_usd"], unused["reserved_usd"], unused["daily_budget_usd"]) == (0, 0, 50)

    triage = limits_once(tokens, TRIAGE, lambda l: ("repository", theirs) in names(l))
    # Bound to its agent only: the repositories its own calls named today.
    assert ("agent", "TriagingAgent") in names(triage)
    assert ("repository", mine) not in names(triage) and ("agent", "ReviewAgent") not in names(triage)

    # Filters: its own names (any spelling), or 403.
    r = limits(tokens, REVIEW, repository=mine.upper())
    assert r.status_code == 200 and [s["name"] for s in r.json()["scopes"]] == [mine, "octo-org"], r.text
    for params, says in [({"repository": theirs}, "outside this token's repositories"),
                         ({"agent": "TriagingAgent"}, "sees agent `ReviewAgent` only")]:
        r = limits(tokens, REVIEW, **params)
        assert_mismatch(r, says)
    assert limits(tokens, TRIAGE, agent="ReviewAgent").status_code == 403
    assert limits(tokens, REVIEW, repository="not a repo").status_code == 400


# --- the native routes ---------------------------------------------------------------------------


MESSAGES = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "x"}]}


def test_the_anthropic_sdk_with_a_scoped_token(tokens, sim):
    claude = anthropic.Anthropic(
        base_url=f"{tokens.url}/anthropic", api_key=REVIEW, max_retries=0, http_client=recording_client2()
    )
    raw = claude.messages.with_raw_response.create(**MESSAGES, extra_headers={"x-github-repository": "octo-org/app"})
    assert raw.parse().content[0].text.startswith("Simulated answer")
    meta = metadata_of(sim)
    assert (meta["agent"], meta["repo"]) == ("ReviewAgent", "octo-org/app"), meta
    row = ledger_row(tokens, raw.headers["x-gateway-request-id"])
    assert (row["route"], row["agent"], row["repository"]) == ("native", "ReviewAgent", "octo-org/app"), row
    assert_never_sent_upstream(sim, REVIEW)

    sim.reset()
    with pytest.raises(anthropic.PermissionDeniedError) as refused:
        claude.messages.create(**MESSAGES, extra_headers={"x-agent-name": "Impostor", "x-github-repository": "octo-org/app"})
    assert refused.value.body["error"]["code"] == "token_scope_mismatch"
    assert sim.requests() == []


@pytest.mark.parametrize("key_header", ["x-api-key", "authorization", "x-goog-api-key", "api-key"])
def test_a_scoped_token_in_any_key_header_is_never_forwarded(tokens, sim, key_header):
    value = f"Bearer {REVIEW}" if key_header == "authorization" else REVIEW
    # The `tokens` Worker passes a caller's own provider key on: a copy of the scoped token in
    # another key header is still not passed on, the provider key is.
    extra = {"api-key": REVIEW} if key_header != "api-key" else {"x-api-key": REVIEW}
    headers = {key_header: value, **extra, "x-github-repository": "acme/app"}
    with tokens.client(token=None) as c:
        r = c.post("/anthropic/v1/messages", json=MESSAGES, headers=headers)
    assert r.status_code == 200, r.text
    assert metadata_of(sim)["agent"] == "ReviewAgent"
    assert_never_sent_upstream(sim, REVIEW)
    [call] = sim.requests()
    for name in ("authorization", "x-api-key", "x-goog-api-key", "api-key"):
        assert name not in call["headers"], f"{name} was forwarded"


def test_a_provider_key_beside_a_scoped_token_goes_on_alone(tokens, sim):
    headers = {"authorization": f"Bearer {REVIEW}", "x-api-key": conftest.CALLER_PROVIDER_KEY,
               "x-github-repository": "acme/app"}
    with tokens.client(token=None) as c:
        assert c.post("/anthropic/v1/messages", json=MESSAGES, headers=headers).status_code == 200
    [call] = sim.requests()
    assert call["headers"]["x-api-key"] == conftest.CALLER_PROVIDER_KEY
    assert "authorization" not in call["headers"]
    assert_never_sent_upstream(sim, REVIEW)


def test_a_native_header_that_disagrees_is_refused(tokens, sim):
    with tokens.client(token=None) as c:
        r = c.post("/anthropic/v1/messages", json=MESSAGES,
                   headers={"x-api-key": TRIAGE, "x-agent-name": "ReviewAgent"})
    assert_mismatch(r, "belongs to agent `TriagingAgent`")
    with tokens.client(token=None) as c:
        r = c.post("/openai/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
                   headers={"authorization": f"Bearer {REVIEW}", "x-github-repository": "acme/other"})
    assert_mismatch(r, "`acme/other` is outside")
    assert sim.requests() == []


def test_a_scoped_token_echoed_in_a_native_error_is_redacted(tokens, sim):
    sim.fault("anthropic", {"kind": "status", "status": 400,
                            "body": {"type": "error", "error": {"type": "invalid_request_error", "message": f"echo {TRIAGE}"}}})
    with tokens.client(token=None) as c:
        r = c.post("/anthropic/v1/messages", json=MESSAGES, headers={"x-api-key": TRIAGE})
    assert r.status_code == 400, r.text
    assert TRIAGE not in r.text and "echo [redacted]" in r.text
