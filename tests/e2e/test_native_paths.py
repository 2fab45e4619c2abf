"""Nothing but the configured gateway is ever reached: only allow-listed providers, and a path
that tries to escape (`..`, encoded dots or slashes, `//`, `@`, a scheme, control characters) is
refused before anything is sent. Requests are written byte for byte on a raw socket, so no client
library tidies the path first."""

from __future__ import annotations

import json

import pytest

from conftest import AGENT_TOKEN
from helpers import send_raw

BODY = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}).encode()


def raw_post(worker, target: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """POSTs to the request-target exactly as given; returns (status, body)."""
    head = [b"POST " + target + b" HTTP/1.1", f"Host: 127.0.0.1:{worker.port}".encode(),
            b"Content-Type: application/json", f"Content-Length: {len(BODY)}".encode(), b"Connection: close"]
    for k, v in (headers or {"x-api-key": AGENT_TOKEN}).items():
        head.append(f"{k}: {v}".encode())
    r = send_raw(worker, b"\r\n".join(head) + b"\r\n\r\n" + BODY, timeout=30)
    return r.status, r.body


def test_a_plain_path_passes(worker, sim):
    status, _ = raw_post(worker, b"/openai/chat/completions")
    assert status == 200
    [call] = sim.requests()
    assert call["path"].endswith("/openai/chat/completions")


# Refused by the Worker's own check (400, OpenAI-shaped, saying why).
REFUSED_BY_THE_WORKER = [
    b"/openai/%2e%2e%2fadmin",
    b"/openai/v1%2f..%2fadmin/gateways",
    b"/openai/v1%2F..%2Fadmin",
    b"/openai/chat%5c..%5cadmin",
    b"/openai/%252e%252e/admin",
    b"/openai//evil.example/chat/completions",
    b"/openai/chat//completions",
    b"/openai/chat/completions/",
    b"/openai/user@evil.example/chat/completions",
    b"/openai/%40evil.example/chat/completions",
    b"/openai/https:/evil.example/chat/completions",
    b"/openai/http:%2f%2fevil.example",
    b"/openai/chat/completions%00",
    b"/openai/chat/%0d%0aHost:%20evil.example",
    b"/openai/chat/%c3%a9",
    b"/openai/chat/completions%",
    b"/workers-ai/@evil.example/x",
]


@pytest.mark.parametrize("target", REFUSED_BY_THE_WORKER, ids=lambda t: t.decode())
def test_escapes_are_refused(worker, sim, target):
    status, body = raw_post(worker, target)
    assert status == 400, body
    err = json.loads(body)["error"]
    assert err["code"] == "invalid_request"
    assert "refused" in err["message"]
    assert sim.requests() == [], "nothing reached AI Gateway"


# The runtime's URL parser resolves dot segments first (`/openai/../x` is `/x`), and a raw
# control character never makes it through the HTTP layer: either way the request is refused
# somewhere, and never forwarded.
NEVER_FORWARDED = [
    b"/openai/../admin/gateways",
    b"/openai/v1/../../v1/chat/completions",
    b"/openai/%2e%2e/admin/gateways",
    b"/openai/.%2e/.%2e/healthz",
    b"/openai/./chat/completions/..",
    b"/openai/chat/compl\x01etions",
    b"/groq/chat/completions",
    b"/OpenAI/chat/completions",
    b"/openai",
]


@pytest.mark.parametrize("target", NEVER_FORWARDED, ids=lambda t: repr(t)[2:-1])
def test_other_escapes_never_reach_the_gateway(worker, sim, target):
    status, _ = raw_post(worker, target)
    assert 400 <= status < 500
    assert sim.requests() == [], "nothing reached AI Gateway"


def test_credentials_in_the_query_are_never_forwarded(worker, sim):
    target = b"/google-ai-studio/v1beta/models/gemini-3.5-flash-lite:streamGenerateContent?alt=sse&key=some-provider-key"
    body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode()
    head = (f"POST {target.decode()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nx-goog-api-key: {AGENT_TOKEN}\r\nConnection: close\r\n\r\n").encode()
    r = send_raw(worker, head + body, timeout=30)
    assert r.status == 200, r.body[:200]
    [call] = sim.requests()
    assert call["query"] == "alt=sse"


def test_the_upstream_host_is_always_the_configured_one(worker, sim):
    # Whatever forwarding headers say, the call goes to AI_GATEWAY_URL (the simulator here).
    headers = {"x-api-key": AGENT_TOKEN, "x-forwarded-host": "evil.example", "x-forwarded-proto": "https",
               "forwarded": "host=evil.example"}
    status, _ = raw_post(worker, b"/openai/chat/completions", headers)
    assert status == 200
    [call] = sim.requests()
    assert call["path"].endswith("/openai/chat/completions")
    assert not any("evil.example" in v for v in call["headers"].values())
