"""Answers and money as the providers really give them, with the official OpenAI SDK: JSON asked
for is JSON from the next target when one answers prose, whole or streamed (held to its end in
the runtime); Gemini's thinking is billed and kept in the ledger's own column; a model a provider
retired is failed over, marked in its provider's limiter and then skipped; an answer from
another model than asked is priced as that model, and the ledger says which. The simulator
answers as the reference says the providers do: Gemini reports thinking apart from
`completion_tokens`, retired and redirected models are switched on per test (`/__sim/models`).

The decisions themselves are the engine simulation's, with every shape of usage: no target
answering as asked (`when_no_target_answers_as_asked_the_error_names_each_and_why`), thinking
billed however a usage reports it, a total missing included
(`reasoning_and_another_model_are_billed_as_the_provider_bills_them`)."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import httpx
import pytest

from conftest import AGENT_TOKEN
from helpers import PICO, openai_sdk

CALLER = {"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/octo-repo"}
LABELS = {
    "type": "json_schema",
    "json_schema": {
        "name": "labels",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"labels": {"type": "array", "items": {"type": "string", "enum": ["bug", "feature"]}}},
            "required": ["labels"],
            "additionalProperties": False,
        },
    },
}
# USD per million tokens (prices.json).
PRICES = {
    "gemini-3.5-flash-lite": (Decimal("0.30"), Decimal("2.50")),
    "gemini-3.6-flash": (Decimal("1.50"), Decimal("7.50")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
}


@pytest.fixture()
def sdk(worker):
    return openai_sdk(worker, AGENT_TOKEN, default_headers=CALLER)


def prose(sim, provider: str, times: int = 1) -> None:
    sim.fault(provider, {"kind": "structured_output", "answer": "prose"}, times=times)


def cost_of(model: str, prompt: int, output: int) -> Decimal:
    rate_in, rate_out = PRICES[model]
    return (rate_in * prompt + rate_out * output) / 1_000_000


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_json_asked_for_is_json_from_the_next_target_when_one_answers_prose(sdk, sim, stream):
    # Gemini answers prose; OpenAI answers JSON. The caller gets OpenAI's, never the prose.
    prose(sim, "google-ai-studio")
    request = dict(model="triage", messages=[{"role": "user", "content": "Label: crash on save"}],
                   response_format=LABELS)
    if stream:
        with sdk.chat.completions.with_streaming_response.create(**request, stream=True) as raw:
            headers = raw.headers
            text = "".join(
                c.choices[0].delta.content or "" for c in raw.parse() if c.choices
            )
    else:
        raw = sdk.chat.completions.with_raw_response.create(**request)
        headers, text = raw.headers, raw.parse().choices[0].message.content
    assert json.loads(text) == {"labels": ["bug"]}
    assert headers["x-gateway-provider"] == "openai"
    trace = headers["x-gateway-trace"]
    assert trace.startswith("google-ai-studio/gemini-3.5-flash-lite=invalid_output"), trace
    # The prose was billed: its attempt is charged, beside OpenAI's.
    assert Decimal(headers["x-gateway-cost-usd"]) > 0


def test_thinking_tokens_are_billed_as_output(sdk, worker, sim):
    raw = sdk.chat.completions.with_raw_response.create(
        model="triage", messages=[{"role": "user", "content": "Is this a bug? think hard"}]
    )
    answer = raw.parse()
    usage = answer.usage
    thinking = usage.completion_tokens_details.reasoning_tokens
    assert thinking > 0 and usage.prompt_tokens + usage.completion_tokens < usage.total_tokens
    expected = cost_of("gemini-3.5-flash-lite", usage.prompt_tokens, usage.completion_tokens + thinking)
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected
    assert Decimal(str(answer.usage.model_extra["cost"])) == expected
    # The ledger keeps the thinking in its own column, and the charge to the picodollar.
    request_id = raw.headers["x-gateway-request-id"]
    deadline, rows = time.monotonic() + 10, []
    while time.monotonic() < deadline and not rows:
        rows = worker.ledger("SELECT * FROM attempts WHERE request_id = ?", (request_id,))
        time.sleep(0.1)
    (row,) = rows
    assert (row["tokens_reasoning"], row["tokens_out"]) == (thinking, usage.completion_tokens + thinking)
    assert Decimal(row["charged_pico"]) / PICO == expected


def test_a_retired_first_target_fails_over_and_is_then_skipped(sdk, worker, sim):
    # `retiring` (the suite's own route): a model the provider retires, then a current one.
    sim.http.post("/__sim/models", json={"retired": ["gemini-3-flash-preview"]}).raise_for_status()
    first = sdk.chat.completions.with_raw_response.create(
        model="retiring", messages=[{"role": "user", "content": "Is this a bug?"}]
    )
    assert first.headers["x-gateway-provider"] == "openai"
    assert first.headers["x-gateway-trace"].startswith("google-ai-studio/gemini-3-flash-preview=model_unavailable")
    # Marked in its provider's limiter: the next request does not try it.
    deadline = time.monotonic() + 10
    while True:
        again = sdk.chat.completions.with_raw_response.create(
            model="retiring", messages=[{"role": "user", "content": "And this one?"}]
        )
        trace = again.headers["x-gateway-trace"]
        if "skipped:model_unavailable" in trace or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert trace.startswith("google-ai-studio/gemini-3-flash-preview=skipped:model_unavailable"), trace
    asked = [r for r in sim.requests() if r["model"].endswith("gemini-3-flash-preview")]
    assert len(asked) == 1, "the retired model was asked again"
    with httpx.Client(base_url=worker.url, headers={"authorization": f"Bearer {AGENT_TOKEN}"}) as c:
        limits = c.get("/limits").json()
        gemini = next(p for p in limits["providers"] if p["provider"] == "google-ai-studio")
        assert any(m["model"] == "gemini-3-flash-preview" for m in gemini["unavailable_models"]), gemini
        health = c.get("/healthz").json()
    assert any("gemini-3-flash-preview" in w for w in health["warnings"]), health


def test_an_answer_from_another_model_is_priced_as_that_model(sdk, worker, sim):
    # The provider answers gemini-3.5-flash-lite's requests with gemini-3.6-flash (dearer).
    sim.http.post("/__sim/models", json={"redirects": {"gemini-3.5-flash-lite": "gemini-3.6-flash"}}).raise_for_status()
    raw = sdk.chat.completions.with_raw_response.create(
        model="triage", messages=[{"role": "user", "content": "Is this a bug?"}]
    )
    answer = raw.parse()
    assert answer.model == "gemini-3.6-flash"
    assert raw.headers["x-gateway-model"] == "gemini-3.6-flash"
    usage = answer.usage
    thinking = usage.completion_tokens_details.reasoning_tokens
    expected = cost_of("gemini-3.6-flash", usage.prompt_tokens, usage.completion_tokens + thinking)
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected
    request_id = raw.headers["x-gateway-request-id"]
    deadline, rows = time.monotonic() + 10, []
    while time.monotonic() < deadline and not rows:
        rows = worker.ledger("SELECT model, answered_model FROM attempts WHERE request_id = ?", (request_id,))
        time.sleep(0.1)
    assert rows == [{"model": "gemini-3.5-flash-lite", "answered_model": "gemini-3.6-flash"}]
    # `/analytics` (from the ledger) flags the asked model's answers that came from another.
    with worker.client(timeout=60) as c:
        r = c.get("/analytics", params={"group_by": "model", "cache": "off"})
    assert r.status_code == 200, r.text
    groups = r.json()["groups"]
    asked = [g for g in groups if g["key"]["model"] == "google-ai-studio/gemini-3.5-flash-lite"]
    assert len(asked) == 1, groups
    group = asked[0]
    assert group["answered_by_other_model"] >= 1, group
