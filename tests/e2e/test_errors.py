"""Bad input: each case gets a clear OpenAI-shaped error with the right status, and nothing
reaches AI Gateway."""

import json

import httpx
import pytest

from conftest import AGENT_TOKEN
from helpers import CHAT, assert_openai_error

OK_BODY = {"model": "triage", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "raw, code, needle",
    [
        (b"{not json", "invalid_json", "not valid JSON"),
        (b"", "invalid_json", "not valid JSON"),
        (b"[]", "invalid_json", "JSON object"),
        (b'{"messages":[{"role":"user","content":"x"}]}', "invalid_request", "`model` is required"),
        (b'{"model":42,"messages":[1]}', "invalid_request", "`model` must be a string"),
        (b'{"model":"triage"}', "invalid_request", "`messages` is required"),
        (b'{"model":"triage","messages":[]}', "invalid_request", "non-empty array"),
        (b'{"model":"triage","model":"review","messages":[1]}', "invalid_request", "duplicate key"),
        (b'{"model":"triage","messages":[1],"stream":"yes"}', "invalid_request", "`stream` must be a boolean"),
    ],
)
def test_malformed_requests_are_400(client, sim, raw, code, needle):
    r = client.post(CHAT, content=raw, headers={"content-type": "application/json"})
    assert_openai_error(r, 400, code, needle)
    assert sim.requests() == []


def test_unknown_model_is_404(client, sim):
    r = client.post(CHAT, json={**OK_BODY, "model": "gpt-9"})
    assert_openai_error(r, 404, "model_not_found", "gpt-9")
    r = client.post(CHAT, json={**OK_BODY, "model": "groq/llama-3"})
    assert_openai_error(r, 404, "model_not_found", "provider `groq` is not configured")
    assert sim.requests() == []


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx"])
def test_wrong_content_type_is_415(client, sim, content_type):
    headers = {"content-type": content_type} if content_type else {}
    r = client.post(CHAT, content=b'{"model":"triage","messages":[1]}', headers=headers)
    assert_openai_error(r, 415, "unsupported_media_type", "application/json")
    assert sim.requests() == []


def test_content_type_parameters_are_fine(client):
    r = client.post(CHAT, content=httpx.Request("POST", "/", json=OK_BODY).content,
                    headers={"content-type": "Application/JSON; charset=utf-8"})
    assert r.status_code == 200, r.text


def test_oversized_body_is_413(client, sim):
    big = {**OK_BODY, "messages": [{"role": "user", "content": "x" * 70_000}]}  # limit is 65536
    r = client.post(CHAT, json=big)
    assert_openai_error(r, 413, "payload_too_large", "65536")

    def chunked():  # no Content-Length: the Worker must count as it reads
        yield b'{"model":"triage","messages":[{"role":"user","content":"'
        for _ in range(80):
            yield b"y" * 1000
        yield b'"}]}'

    r = client.post(CHAT, content=chunked(), headers={"content-type": "application/json"})
    assert_openai_error(r, 413, "payload_too_large")
    assert sim.requests() == []


def test_unknown_route_is_404(client):
    assert_openai_error(client.get("/v1/completions"), 404, "not_found", "/v1/completions")
    assert_openai_error(client.post("/v1/embeddings", json={}), 404, "not_found")


def test_wrong_method_is_405_with_allow(client):
    r = client.get(CHAT)
    assert_openai_error(r, 405, "method_not_allowed", "POST")
    assert r.headers["allow"] == "POST"
    r = client.delete("/v1/models")
    assert_openai_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "GET, HEAD"


def test_a_method_outside_fetchs_list_is_405_not_a_get(client):
    # workers-rs' Request reads any method it does not know as GET: `PURGE /v1/models` was
    # served the model list. The entry now reads the runtime's own method string.
    for method in ("PURGE", "MKCOL"):
        r = client.request(method, "/v1/models")
        assert_openai_error(r, 405, "method_not_allowed", method)
        assert r.headers["allow"] == "GET, HEAD"
    r = client.request("PURGE", CHAT, json={"model": "triage", "messages": []})
    assert_openai_error(r, 405, "method_not_allowed")
    assert r.headers["allow"] == "POST"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer wrong-token"},
        {"authorization": f"Basic {AGENT_TOKEN}"},
        {"authorization": AGENT_TOKEN},
        {"authorization": f"Bearer {AGENT_TOKEN[:-1]}"},
        {"authorization": f"Bearer {AGENT_TOKEN.upper()}"},
        {"authorization": f"Bearer {AGENT_TOKEN}, Bearer {AGENT_TOKEN}"},
        {"x-api-key": AGENT_TOKEN},
    ],
)
def test_auth_is_required(worker, sim, headers):
    with worker.client(token=None) as c:
        r = c.post(CHAT, json=OK_BODY, headers=headers)
    err = assert_openai_error(r, 401, "invalid_api_key")
    assert err["type"] == "authentication_error"
    assert sim.requests() == []


def test_token_in_query_string_is_not_accepted(worker, sim):
    with worker.client(token=None) as c:
        r = c.post(f"{CHAT}?api_key={AGENT_TOKEN}", json=OK_BODY)
    assert r.status_code == 401


def test_scheme_is_case_insensitive(worker):
    with worker.client(token=None) as c:
        r = c.post(CHAT, json=OK_BODY, headers={"authorization": f"bearer {AGENT_TOKEN}"})
    assert r.status_code == 200


def test_unconfigured_worker_refuses_everything(workers, sim):
    """No AGENT_TOKEN: a clear 500, for every token, never an open gateway."""
    with workers["unconfigured"].client(token="anything") as c:
        for token in ["anything", "undefined", "null"]:
            r = c.post(CHAT, json=OK_BODY, headers={"authorization": f"Bearer {token}"})
            err = assert_openai_error(r, 500, "gateway_misconfigured", "AGENT_TOKEN")
            assert err["type"] == "server_error"
    assert sim.requests() == []


@pytest.mark.parametrize(
    "name, value, needle",
    [
        ("x-agent-name", "Triaging Agent", "x-agent-name"),
        ("x-agent-name", 'a"},"injected":{"x', "x-agent-name"),
        ("x-github-repository", "not-a-repo", "x-github-repository"),
        ("x-github-repository", "owner/repo/extra", "x-github-repository"),
    ],
)
def test_caller_headers_are_validated(client, sim, name, value, needle):
    r = client.post(CHAT, json=OK_BODY, headers={name: value})
    assert_openai_error(r, 400, "invalid_request", needle)
    assert sim.requests() == []


def call(id_: str, name: str = "read_file") -> dict:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": "{}"}}


@pytest.mark.parametrize(
    "messages, needle",
    [
        # A tool result whose call is nowhere before it.
        ([{"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "call_x", "content": "ok"}],
         "messages[1]"),
        # A call left without its result, then the conversation goes on.
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [call("call_a")]},
          {"role": "user", "content": "and?"}], "messages[1]"),
        # A call answered twice.
        ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": [call("call_a")]},
          {"role": "tool", "tool_call_id": "call_a", "content": "1"},
          {"role": "tool", "tool_call_id": "call_a", "content": "2"}], "messages[3]"),
    ],
    ids=["unknown-tool-call-id", "call-without-result", "answered-twice"],
)
def test_a_broken_tool_history_is_a_400_naming_the_message(client, sim, messages, needle):
    # Every provider refuses it: the gateway says so before spending an attempt.
    r = client.post(CHAT, json={"model": "triage", "messages": messages})
    err = assert_openai_error(r, 400, "invalid_request", needle)
    assert err["type"] == "invalid_request_error"
    assert sim.requests() == []


def test_tool_ids_and_signatures_out_of_bounds_are_refused_or_passed_safely(client, sim):
    # A 10 KB call id and a 1 MB signature (MAX_BODY_BYTES is 64 KB here: the body is refused
    # whole, 413); a 10 KB id in a small body goes through, rewritten where a target needs it.
    huge = "x" * (1024 * 1024)
    history = [{"role": "user", "content": "hi"},
               {"role": "assistant", "content": None,
                "tool_calls": [{**call("call_a"), "extra_content": {"google": {"thought_signature": huge}}}]},
               {"role": "tool", "tool_call_id": "call_a", "content": "ok"}]
    r = client.post(CHAT, json={"model": "triage", "messages": history})
    assert_openai_error(r, 413, "payload_too_large")
    long_id = "c" * 10_240
    history = [{"role": "user", "content": "hi"},
               {"role": "assistant", "content": None, "tool_calls": [call(long_id)]},
               {"role": "tool", "tool_call_id": long_id, "content": "ok"}]
    r = client.post(CHAT, json={"model": "openai/gpt-4o-mini", "messages": history})
    assert r.status_code == 200, r.text
    sent = [m for m in json.loads(sim.requests()[0]["body"])["messages"] if m["role"] != "user"]
    ids = [sent[0]["tool_calls"][0]["id"], sent[1]["tool_call_id"]]
    assert ids[0] == ids[1] and 0 < len(ids[0]) <= 40, ids
