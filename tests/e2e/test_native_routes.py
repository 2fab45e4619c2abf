"""Provider-native routes (`/{provider}/{rest}`): each provider's official SDK talks to the Worker
with only its base URL changed, streaming included; the caller's token is accepted where that SDK
puts its key and never reaches AI Gateway; usage becomes an exact cost; the same decision headers
as the unified route. (That a native route retries its one provider and never another is the
engine simulation's `a_native_route_retries_its_one_provider_and_never_another`.)"""

from __future__ import annotations

import re
from decimal import Decimal

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from conftest import ACCOUNT_ID, AGENT_TOKEN, AIG_TOKEN, CALLER_PROVIDER_KEY, GATEWAY_ID
from helpers import recording_client, recording_client2

# USD per million tokens (prices.json): (input, output).
PRICES = {
    ("google-ai-studio", "gemini-3.5-flash-lite"): (Decimal("0.30"), Decimal("2.50")),
    ("openai", "gpt-4o-mini"): (Decimal("0.15"), Decimal("0.60")),
    ("anthropic", "claude-haiku-4-5"): (Decimal("1.00"), Decimal("5.00")),
}


def expected_cost(provider: str, model: str, tokens_in: int, tokens_out: int) -> Decimal:
    price_in, price_out = PRICES[(provider, model)]
    return (price_in * tokens_in + price_out * tokens_out) / Decimal(1_000_000)


def upstream_calls(sim) -> list[dict]:
    return sim.requests()


def assert_gateway_only_saw_its_own_token(call: dict) -> None:
    """What reached AI Gateway: the Worker's gateway token, never the caller's token or key."""
    headers = call["headers"]
    assert headers.get("cf-aig-authorization") == f"Bearer {AIG_TOKEN}"
    for name in ("authorization", "x-api-key", "x-goog-api-key", "api-key"):
        assert name not in headers, f"{name} was forwarded"
    flat = repr(headers) + call["query"]
    assert AGENT_TOKEN not in flat
    assert CALLER_PROVIDER_KEY not in flat
    assert headers.get("cf-aig-max-attempts") == "1"
    # Caching is off unless the caller asks for it.
    assert headers.get("cf-aig-skip-cache") == "true"


def assert_decision(headers, provider: str, model: str, attempts: int = 1) -> None:
    assert headers["x-gateway-provider"] == provider
    assert headers["x-gateway-model"] == model
    assert headers["x-gateway-attempts"] == str(attempts)
    assert headers["x-gateway-trace"].endswith("=200")
    assert len(headers["cf-aig-log-id"]) == 26
    assert headers["cf-aig-cache-status"] == "MISS"


# --- Anthropic ---------------------------------------------------------------------------------


@pytest.fixture()
def claude(worker):
    return anthropic.Anthropic(
        base_url=f"{worker.url}/anthropic", api_key=AGENT_TOKEN, max_retries=0, http_client=recording_client2()
    )


def test_anthropic_sdk(claude, sim):
    raw = claude.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        system="You label issues.",
        messages=[{"role": "user", "content": "Is this a bug?"}],
        extra_headers={"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/octo-repo"},
    )
    message = raw.parse()
    assert message.content[0].text == "Simulated answer from anthropic/claude-haiku-4-5: Is this a bug?"
    assert_decision(raw.headers, "anthropic", "claude-haiku-4-5")
    cost = expected_cost("anthropic", "claude-haiku-4-5", message.usage.input_tokens, message.usage.output_tokens)
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == cost

    [call] = upstream_calls(sim)
    assert call["path"] == f"/v1/{ACCOUNT_ID}/{GATEWAY_ID}/anthropic/v1/messages"
    # The SDK's own API version header is passed on as it sent it.
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", call["headers"]["anthropic-version"])
    assert_gateway_only_saw_its_own_token(call)
    assert '"agent":"TriagingAgent"' in call["headers"]["cf-aig-metadata"]


def test_anthropic_sdk_streaming(claude, sim):
    with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "Review this diff"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        assert stream.response.headers["x-gateway-provider"] == "anthropic"
        assert stream.response.headers["x-gateway-attempts"] == "1"
    assert text == "Simulated answer from anthropic/claude-haiku-4-5: Review this diff"
    assert final.usage.output_tokens == len(text.split())
    assert final.usage.input_tokens > 0
    [call] = upstream_calls(sim)
    assert_gateway_only_saw_its_own_token(call)


def test_anthropic_stream_cut_after_content_raises(claude, sim):
    sim.fault("anthropic", {"kind": "cut_after_first_chunk"})
    text = ""
    with pytest.raises(anthropic.APIError) as e:
        with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=100, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            for chunk in stream.text_stream:
                text += chunk
    assert text, "content before the cut was delivered"
    assert "incomplete" in str(e.value)


def test_anthropic_error_passes_through_in_anthropics_shape(claude, sim):
    # Two 529s exhaust the attempts (attempts_per_target = 2); the provider's error comes back as
    # the provider sent it, so the SDK raises the exception it would have raised.
    sim.fault("anthropic", {"kind": "status", "status": 529}, times=2)
    with pytest.raises(anthropic.InternalServerError) as e:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 529
    assert e.value.body["error"]["type"] == "overloaded_error"
    assert e.value.response.headers["x-gateway-provider"] == "anthropic"
    assert e.value.response.headers["x-gateway-attempts"] == "2"
    assert e.value.response.headers["x-gateway-cost-usd"] == "0"
    assert sim.calls() == {"anthropic": 2}, "never another provider"


def test_anthropic_bad_request_is_not_retried(claude, sim):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    assert "max_tokens" in str(e.value)
    assert sim.calls() == {"anthropic": 1}


def test_anthropic_wrong_key_is_refused(worker, sim):
    bad = anthropic.Anthropic(base_url=f"{worker.url}/anthropic", api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert sim.requests() == []


# --- OpenAI ------------------------------------------------------------------------------------


@pytest.fixture()
def gpt(worker):
    return openai.OpenAI(
        base_url=f"{worker.url}/openai", api_key=AGENT_TOKEN, max_retries=0, http_client=recording_client()
    )


def test_openai_sdk(gpt, sim):
    raw = gpt.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Label this"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Simulated answer from openai/gpt-4o-mini: Label this"
    assert_decision(raw.headers, "openai", "gpt-4o-mini")
    u = completion.usage
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected_cost(
        "openai", "gpt-4o-mini", u.prompt_tokens, u.completion_tokens
    )
    [call] = upstream_calls(sim)
    assert call["path"] == f"/v1/{ACCOUNT_ID}/{GATEWAY_ID}/openai/chat/completions"
    assert_gateway_only_saw_its_own_token(call)


def test_openai_sdk_streaming(gpt, sim):
    stream = gpt.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    assert text == "Simulated answer from openai/gpt-4o-mini: Stream it"
    assert usage.completion_tokens == len(text.split())
    [call] = upstream_calls(sim)
    assert_gateway_only_saw_its_own_token(call)


# --- Google GenAI ------------------------------------------------------------------------------


@pytest.fixture()
def gemini(worker):
    return genai.Client(
        api_key=AGENT_TOKEN,
        http_options=genai_types.HttpOptions(
            base_url=f"{worker.url}/google-ai-studio", api_version="v1beta", httpx_client=recording_client()
        ),
    )


def test_google_genai_sdk(gemini, sim):
    response = gemini.models.generate_content(model="gemini-3.5-flash-lite", contents="What is this issue about?")
    assert response.text == "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: What is this issue about?"
    headers = response.sdk_http_response.headers
    assert_decision(headers, "google-ai-studio", "gemini-3.5-flash-lite")
    u = response.usage_metadata
    # Gemini bills its thinking (thoughtsTokenCount, apart from the candidates) as output.
    assert u.thoughts_token_count > 0
    assert Decimal(headers["x-gateway-cost-usd"]) == expected_cost(
        "google-ai-studio", "gemini-3.5-flash-lite", u.prompt_token_count,
        u.candidates_token_count + u.thoughts_token_count
    )
    [call] = upstream_calls(sim)
    assert call["path"] == f"/v1/{ACCOUNT_ID}/{GATEWAY_ID}/google-ai-studio/v1beta/models/gemini-3.5-flash-lite:generateContent"
    assert_gateway_only_saw_its_own_token(call)


def test_google_genai_sdk_streaming(gemini, sim):
    chunks = list(gemini.models.generate_content_stream(model="gemini-3.5-flash-lite", contents="Stream a review"))
    text = "".join(c.text or "" for c in chunks)
    assert text == "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Stream a review"
    assert chunks[-1].usage_metadata.candidates_token_count == len(text.split())
    [call] = upstream_calls(sim)
    assert call["query"] == "alt=sse"
    assert_gateway_only_saw_its_own_token(call)


def test_google_genai_stream_cut_after_content_raises(gemini, sim):
    sim.fault("google-ai-studio", {"kind": "cut_after_first_chunk"})
    text = ""
    with pytest.raises(genai_errors.APIError) as e:
        for chunk in gemini.models.generate_content_stream(model="gemini-3.5-flash-lite", contents="x"):
            text += chunk.text or ""
    assert text, "content before the cut was delivered"
    assert "incomplete" in str(e.value)


def test_gemini_json_array_stream_without_alt_sse(worker, sim):
    path = "/google-ai-studio/v1beta/models/gemini-3.5-flash-lite:streamGenerateContent"
    body = {"contents": [{"parts": [{"text": "Array please"}]}]}
    with worker.client(token=None) as c:
        r = c.post(path, json=body, headers={"x-goog-api-key": AGENT_TOKEN})
    assert r.status_code == 200, r.text
    elements = r.json()
    text = "".join(p["text"] for e in elements for cand in e["candidates"] for p in cand.get("content", {}).get("parts", []))
    assert text == "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Array please"
    assert r.headers["x-gateway-provider"] == "google-ai-studio"


# --- Workers AI, Azure OpenAI, AWS Bedrock -----------------------------------------------------


def test_workers_ai_openai_compatible_path(worker, sim):
    client = openai.OpenAI(base_url=f"{worker.url}/workers-ai/v1", api_key=AGENT_TOKEN, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="@cf/meta/llama-3.1-8b-instruct", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.parse().choices[0].message.content.endswith(": hello")
    assert raw.headers["x-gateway-provider"] == "workers-ai"
    # Workers AI models have no price in prices.json: no cost header (unknown), never a guess.
    assert "x-gateway-cost-usd" not in raw.headers
    [call] = upstream_calls(sim)
    assert call["path"].endswith("/workers-ai/v1/chat/completions")
    assert_gateway_only_saw_its_own_token(call)


def test_azure_openai_with_the_api_key_header(worker, sim):
    # The OpenAI SDK also sends `Authorization: Bearer <api_key>`: here a provider key of the
    # caller's, which must be dropped; the gateway token travels in Azure's `api-key` header.
    client = openai.OpenAI(
        base_url=f"{worker.url}/azure-openai/my-resource/gpt-4o-mini",
        api_key=CALLER_PROVIDER_KEY,
        default_headers={"api-key": AGENT_TOKEN},
        default_query={"api-version": "2024-10-21"},
        max_retries=0,
        http_client=recording_client(),
    )
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Azure?"}], stream=True
    )
    text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    assert text == "Simulated answer from azure-openai/gpt-4o-mini: Azure?"
    [call] = upstream_calls(sim)
    assert call["path"].endswith("/azure-openai/my-resource/gpt-4o-mini/chat/completions")
    assert call["query"] == "api-version=2024-10-21"
    assert_gateway_only_saw_its_own_token(call)


def test_aws_bedrock_invoke_and_converse(worker, sim):
    with worker.client() as c:
        model = "anthropic.claude-3-haiku-20240307-v1%3A0"
        r = c.post(
            f"/aws-bedrock/bedrock-runtime/us-east-1/model/{model}/invoke",
            json={"anthropic_version": "bedrock-2023-05-31", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["content"][0]["text"].endswith(": hi")
        assert r.headers["x-gateway-provider"] == "aws-bedrock"
        assert r.headers["x-gateway-model"] == "anthropic.claude-3-haiku-20240307-v1:0"
        assert "x-gateway-cost-usd" not in r.headers
        r = c.post(
            "/aws-bedrock/bedrock-runtime/us-east-1/model/amazon.nova-lite-v1:0/converse",
            json={"messages": [{"role": "user", "content": [{"text": "hi"}]}]},
        )
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["outputTokens"] > 0
    calls = upstream_calls(sim)
    assert [c["provider"] for c in calls] == ["aws-bedrock", "aws-bedrock"]
    for call in calls:
        assert_gateway_only_saw_its_own_token(call)


def test_native_caching_only_when_the_caller_asks(gpt, sim):
    ask = {"cf-aig-cache-ttl": "120", "cf-aig-cache-key": "native-cache-test"}
    first = gpt.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "cache me"}], extra_headers=ask
    )
    second = gpt.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "cache me"}], extra_headers=ask
    )
    assert first.headers["cf-aig-cache-status"] == "MISS"
    assert second.headers["cf-aig-cache-status"] == "HIT"
    # A cache hit costs nothing.
    assert Decimal(first.headers["x-gateway-cost-usd"]) > 0
    assert second.headers["x-gateway-cost-usd"] == "0"
    calls = sim.requests()
    assert calls[0]["headers"]["cf-aig-cache-ttl"] == "120"
    assert "cf-aig-skip-cache" not in calls[0]["headers"]


# --- Auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {AGENT_TOKEN}"},
        {"x-api-key": AGENT_TOKEN},
        {"x-goog-api-key": AGENT_TOKEN},
        {"api-key": AGENT_TOKEN},
    ],
    ids=["authorization", "x-api-key", "x-goog-api-key", "api-key"],
)
def test_token_accepted_in_every_sdk_key_header_and_always_stripped(worker, sim, headers):
    with worker.client(token=None) as c:
        r = c.post("/openai/chat/completions", json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}, headers=headers)
    assert r.status_code == 200, r.text
    [call] = upstream_calls(sim)
    assert_gateway_only_saw_its_own_token(call)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong"},
        {"authorization": AGENT_TOKEN},  # not the Bearer scheme
        {"x-api-key": "wrong"},
        {"x-goog-api-key": AGENT_TOKEN[:-1]},
        {"api-key": ""},
        {"x-other-key": AGENT_TOKEN},
        {"authorization": f"Bearer {CALLER_PROVIDER_KEY}"},
    ],
)
def test_missing_or_wrong_tokens_are_401(worker, sim, headers):
    with worker.client(token=None) as c:
        r = c.post("/anthropic/v1/messages", json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}, headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "invalid_api_key"
    assert sim.requests() == []


def test_unified_route_still_takes_only_bearer(worker, sim):
    with worker.client(token=None) as c:
        r = c.post("/v1/chat/completions", json={"model": "triage", "messages": [{"role": "user", "content": "x"}]},
                   headers={"x-api-key": AGENT_TOKEN})
    assert r.status_code == 401
    assert sim.requests() == []


def test_caller_provider_keys_are_forwarded_only_when_allowed(workers, sim):
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    both = {"authorization": f"Bearer {AGENT_TOKEN}", "x-api-key": CALLER_PROVIDER_KEY}
    with workers["main"].client(token=None) as c:
        assert c.post("/anthropic/v1/messages", json=body, headers=both).status_code == 200
    [call] = sim.requests()
    assert_gateway_only_saw_its_own_token(call)
    sim.reset()
    # The `tokens` Worker allows it (ALLOW_CALLER_PROVIDER_KEYS=true).
    with workers["tokens"].client(token=None) as c:
        assert c.post("/anthropic/v1/messages", json=body, headers=both).status_code == 200
    [call] = sim.requests()
    # Allowed: the caller's provider key goes on; the agent token still never does.
    assert call["headers"]["x-api-key"] == CALLER_PROVIDER_KEY
    assert "authorization" not in call["headers"]
    assert AGENT_TOKEN not in repr(call["headers"])


# --- Limits ------------------------------------------------------------------------------------


def test_native_calls_count_against_the_providers_rate_limit(workers, sim):
    """The limiter's Durable Object counts a native call against its provider's rate. (What the
    engine makes of a refusal on a native route, one target and no other, is the simulation's.)
    The `tight` Worker allows 1 request per minute to Bedrock, which no other test calls there."""
    path = "/aws-bedrock/bedrock-runtime/us-east-1/model/amazon.nova-lite-v1:0/converse"
    body = {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    with workers["tight"].client() as c:
        statuses = [c.post(path, json=body) for _ in range(2)]
    assert [r.status_code for r in statuses] == [200, 429], [r.text for r in statuses]
    refused = statuses[1]
    assert refused.json()["error"]["code"] == "gateway_limits_exhausted"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-gateway-provider"] == "aws-bedrock"
    assert refused.headers["x-gateway-attempts"] == "0"
    assert sim.calls() == {"aws-bedrock": 1}, "the refused call never reached AI Gateway"
