"""The gateway and its state Worker (wrangler.state.toml): what only the binding reaches, and a
gateway deployed without the state Worker, which must fail closed with errors that say why.

The state Worker has no port of its own in the tests (as it has no public URL when deployed):
everything here goes through the gateway.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

import pytest

from conftest import ADMIN_TOKEN, AGENT_TOKEN, SECRETS, base_values, running_worker
from test_errors import assert_openai_error

CHAT = {"model": "triage", "messages": [{"role": "user", "content": "Label this issue"}]}
HEADERS = {"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/octo-repo"}


def test_the_cron_path_is_not_reachable_through_the_gateway(client):
    # The state Worker's cron path answers only over the binding (and only with a token): the
    # gateway's router knows no such route.
    for method in ("GET", "POST"):
        r = client.request(method, "/__cron")
        assert_openai_error(r, 404, "not_found", "/__cron")


def test_back_office_routes_answer_through_the_binding(client):
    r = client.get("/analytics", params={"format": "json"})
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "analytics"
    # The state Worker authenticates what the gateway hands it, as the gateway would.
    r = client.get("/analytics", headers={"authorization": "Bearer wrong"})
    assert_openai_error(r, 401, "invalid_api_key")
    r = client.get("/admin/gateways", headers={"authorization": f"Bearer {AGENT_TOKEN}"})
    assert r.status_code in (401, 403), r.text


@pytest.fixture(scope="module")
def lone_gateway(sim):
    with running_worker("no-state", base_values(sim), with_state=False) as w:
        yield w


def test_a_gateway_without_its_state_worker_fails_closed_and_says_why(lone_gateway, sim):
    with lone_gateway.client() as c:
        # Nothing is spent without a limiter to count it: the chat request is refused as every
        # unavailable limiter refuses (429, each target named with why), before any call upstream.
        r = c.post("/v1/chat/completions", json=CHAT, headers=HEADERS)
        err = assert_openai_error(r, 429, "gateway_limits_exhausted", "the limiter for google-ai-studio is unavailable")
        assert "answered" in err["message"], err
        assert sim.requests() == []
        # The back office: the binding's failure, said in the OpenAI shape, never the runtime's page.
        r = c.get("/analytics", params={"format": "json"})
        assert_openai_error(r, 502, "upstream_unreachable", "state Worker")
        r = c.get("/admin/gateways", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert_openai_error(r, 502, "upstream_unreachable", "is it deployed")
        # What the request path needs of nothing else still answers.
        assert c.get("/v1/models").status_code == 200


ROTATED = "agt-rotated-" + secrets.token_hex(16)
SCOPED = "agt-scoped-" + secrets.token_hex(16)
SECRETS.extend([ROTATED, SCOPED])


@pytest.fixture(scope="module")
def split_secrets(sim):
    """The gateway and its state Worker with secrets that differ, as after a rotation done on one
    of them only: the gateway has AGENT_TOKEN, the state Worker ROTATED. And an ADMIN_TOKEN equal
    to a scoped token, with AGENT_TOKENS set on the gateway alone."""
    scoped = {hashlib.sha256(SCOPED.encode()).hexdigest(): {"agent": "TriagingAgent"}}
    values = base_values(
        sim, AGENT_TOKENS="'" + json.dumps(scoped, separators=(",", ":")) + "'", ADMIN_TOKEN=SCOPED
    )
    with running_worker("split-secrets", values, state_values={"AGENT_TOKEN": ROTATED, "AGENT_TOKENS": None}) as w:
        yield w


def test_secrets_that_differ_between_the_workers_fail_closed(split_secrets):
    # Each side checks with its own secrets, and a token must pass both.
    for token in (AGENT_TOKEN, ROTATED):
        with split_secrets.client(token=token) as c:
            r = c.get("/analytics", params={"format": "json"})
        assert_openai_error(r, 401, "invalid_api_key")
    # ADMIN_TOKEN equal to a scoped token turns /admin off where the scoped tokens are known
    # (the gateway), though the state Worker, which has no AGENT_TOKENS, would take it.
    with split_secrets.client(token=SCOPED) as c:
        r = c.get("/admin/gateways")
    assert r.status_code == 404, r.text
    assert "ADMIN_TOKEN" in r.json()["error"]["message"]


def test_a_cron_the_state_worker_refuses_is_logged_by_the_gateway(split_secrets):
    # The gateway's cron presents its AGENT_TOKEN, which the state Worker (ROTATED) refuses:
    # nothing is rolled up or pruned, and the gateway says so in one line.
    with split_secrets.client() as c:
        assert c.get("/__scheduled", params={"cron": "17 * * * *"}).status_code == 200
    deadline = time.monotonic() + 10
    log = ""
    while time.monotonic() < deadline:
        log = split_secrets.log_path.read_text(errors="replace")
        if '"event":"analytics_cron_failed"' in log:
            break
        time.sleep(0.2)
    lines = [line for line in log.splitlines() if '"event":"analytics_cron_failed"' in line]
    assert lines and "the state Worker answered 401" in lines[-1], log[-2000:]
    assert '"event":"analytics_rollup"' not in log and '"event":"ledger_pruned"' not in log
