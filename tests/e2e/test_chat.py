"""POST /v1/chat/completions through the Worker to the simulated AI Gateway: what is forwarded,
what comes back, streaming included."""

import json

from conftest import ACCOUNT_ID, AIG_TOKEN, AGENT_TOKEN, GATEWAY_ID
from helpers import CHAT, body, sse_events

COMPAT_PATH = f"/v1/{ACCOUNT_ID}/{GATEWAY_ID}/compat/chat/completions"


def test_alias_goes_to_gemini_first_with_decision_headers(client, sim):
    r = client.post(CHAT, json=body(), headers={"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/octo-repo"})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == (
        "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: The build fails on main"
    )
    # Gemini's thinking is reported apart from completion_tokens, and counted in the total.
    usage = answer["usage"]
    thinking = usage["completion_tokens_details"]["reasoning_tokens"]
    assert thinking > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + thinking
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
    assert r.headers["x-gateway-model"] == "gemini-3.5-flash-lite"
    assert r.headers["x-gateway-attempts"] == "1"
    assert r.headers["cf-aig-cache-status"] == "MISS"

    [seen] = sim.requests()
    assert seen["path"] == COMPAT_PATH
    assert r.headers["cf-aig-log-id"] == seen["log_id"]
    assert sim.calls() == {"google-ai-studio": 1}


def test_forwarded_body_is_the_callers_bytes_but_for_model(client, sim):
    # Odd spacing, key order, unicode escapes and unknown fields must all survive byte for byte.
    raw = (
        '{ "temperature" : 0.25,"model":"triage" , "messages":[{"role":"user","content":"caf\\u00e9 \U0001F600"}],'
        '"tools":[{"type":"function","function":{"name":"label","parameters":{"type":"object"}}}],'
        '"x_custom":{"model":"not-this-one"} }'
    )
    r = client.post(CHAT, content=raw.encode(), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    [seen] = sim.requests()
    expected = raw.replace('"model":"triage"', '"model":"google-ai-studio/gemini-3.5-flash-lite"')
    # No output limit given: the route's is added at the end (docs/budgets.md, "Provider limits and reservations").
    expected = expected.removesuffix("}") + ',"max_tokens":1024}'
    assert seen["body"] == expected


def test_gateway_credentials_and_metadata(client, sim):
    r = client.post(
        CHAT,
        json=body(),
        headers={"x-agent-name": "PRReviewAgent", "x-github-repository": "octo-org/octo-repo"},
    )
    assert r.status_code == 200, r.text
    [seen] = sim.requests()
    h = seen["headers"]
    assert h["cf-aig-authorization"] == f"Bearer {AIG_TOKEN}"
    # BYOK: no provider key, and the caller's own token is never passed on.
    assert "authorization" not in h
    assert AGENT_TOKEN not in json.dumps(seen)
    meta = json.loads(h["cf-aig-metadata"])
    assert meta["agent"] == "PRReviewAgent"
    assert meta["repo"] == "octo-org/octo-repo"
    assert meta["route"] == "triage"
    assert len(meta) <= 5
    # The Worker owns retries; AI Gateway must not retry underneath it.
    assert h["cf-aig-max-attempts"] == "1"


def test_explicit_provider_model(client, sim):
    r = client.post(CHAT, json=body(model="openai/gpt-4o-mini"))
    assert r.status_code == 200, r.text
    assert r.headers["x-gateway-provider"] == "openai"
    assert r.headers["x-gateway-model"] == "gpt-4o-mini"
    assert json.loads(sim.requests()[0]["body"])["model"] == "openai/gpt-4o-mini"
    assert "openai/gpt-4o-mini" in r.json()["choices"][0]["message"]["content"]


def test_review_alias(client, sim):
    r = client.post(CHAT, json=body(model="review"))
    assert r.status_code == 200
    assert json.loads(sim.requests()[0]["body"])["model"] == "google-ai-studio/gemini-3.5-flash-lite"
    assert json.loads(sim.requests()[0]["headers"]["cf-aig-metadata"])["route"] == "review"


def test_stream_is_relayed_event_by_event_with_usage(client, sim):
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-gateway-provider"] == "google-ai-studio"
        assert r.headers["x-gateway-attempts"] == "1"
        assert "cf-aig-log-id" in r.headers
        raw = b"".join(r.iter_raw())
    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: The build fails on main"
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert len(usage) == 1 and usage[0]["completion_tokens"] > 0
    # Framing is the upstream's: every event ends with a blank line, nothing else in between.
    assert raw.endswith(b"data: [DONE]\n\n")
    assert all(block.startswith("data: ") for block in raw.decode().split("\n\n") if block)

    # The Worker asked AI Gateway for the usage chunk.
    forwarded = json.loads(sim.requests()[0]["body"])
    assert forwarded["stream_options"] == {"include_usage": True}
    assert forwarded["stream"] is True


def test_stream_keeps_callers_stream_options(client, sim):
    r = client.post(CHAT, json=body(stream=True, stream_options={"include_usage": False}))
    assert r.status_code == 200
    assert json.loads(sim.requests()[0]["body"])["stream_options"] == {"include_usage": True}


def test_stream_is_not_buffered(client, sim):
    """The first content must reach the client while the upstream is still producing: here the
    upstream sends one content chunk and then goes silent until the Worker's idle deadline (2 s in
    the suite). A buffering gateway would deliver nothing before that deadline."""
    import time

    sim.fault("google-ai-studio", {"kind": "stall_after_first_chunk"})
    started = time.monotonic()
    first_content_at = None
    raw = b""
    with client.stream("POST", CHAT, json=body(stream=True)) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            raw += chunk
            if first_content_at is None and b'"content":"Simulated"' in raw:
                first_content_at = time.monotonic() - started
    total = time.monotonic() - started
    assert first_content_at is not None
    assert total >= 1.9, "the stall deadline ended the stream"
    assert first_content_at < total - 1.0, f"content arrived only at the end ({first_content_at:.2f}s of {total:.2f}s)"
    # And the stall ended with an explicit error event, not a clean-looking end.
    events = sse_events(raw)
    assert events[-1] != "[DONE]"
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"


def test_rest_endpoint_mode(workers, sim):
    with workers["rest"].client() as c:
        r = c.post(CHAT, json=body())
    assert r.status_code == 200, r.text
    [seen] = sim.requests()
    assert seen["path"] == f"/client/v4/accounts/{ACCOUNT_ID}/ai/v1/chat/completions"
    assert seen["headers"]["cf-aig-gateway-id"] == GATEWAY_ID
    assert json.loads(seen["body"])["model"] == "google/gemini-3.5-flash-lite"
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
