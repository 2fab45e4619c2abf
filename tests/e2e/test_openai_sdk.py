"""The official OpenAI Python SDK, pointed at the Worker's /v1, as the GitHub agent uses it."""

import openai
import pytest

from conftest import AGENT_TOKEN
from helpers import openai_sdk


@pytest.fixture()
def sdk(worker):
    return openai_sdk(worker, AGENT_TOKEN)


def test_non_streaming(sdk):
    raw = sdk.chat.completions.with_raw_response.create(
        model="triage",
        messages=[{"role": "user", "content": "Is this a bug?"}],
        extra_headers={"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/octo-repo"},
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == (
        "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Is this a bug?"
    )
    assert completion.usage.total_tokens > 0
    assert raw.headers["x-gateway-provider"] == "google-ai-studio"
    assert raw.headers["x-gateway-model"] == "gemini-3.5-flash-lite"


def test_streaming(sdk):
    stream = sdk.chat.completions.create(
        model="review",
        messages=[{"role": "user", "content": "Review this diff"}],
        stream=True,
    )
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Review this diff"
    assert usage is not None and usage.completion_tokens > 0


def test_models_list(sdk):
    ids = [m.id for m in sdk.models.list()]
    for alias in ("triage", "review", "default"):
        assert alias in ids
    assert "google-ai-studio/gemini-3.5-flash-lite" in ids
    assert "openai/gpt-4o-mini" in ids


def test_sdk_raises_the_matching_exceptions(worker, sdk):
    bad_key = openai_sdk(worker, "wrong")
    with pytest.raises(openai.AuthenticationError):
        bad_key.chat.completions.create(model="triage", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.NotFoundError) as e:
        sdk.chat.completions.create(model="gpt-9-ultra", messages=[{"role": "user", "content": "x"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model="triage", messages=[])


def test_stream_cut_after_content_raises_instead_of_ending_cleanly(sim, sdk):
    sim.fault("google-ai-studio", {"kind": "cut_after_first_chunk"})
    stream = sdk.chat.completions.create(model="triage", messages=[{"role": "user", "content": "x"}], stream=True)
    text = ""
    with pytest.raises(openai.APIError) as e:
        for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    assert text, "content before the cut was delivered"
    assert "incomplete" in str(e.value)
