"""Security: what a hostile caller or a hostile upstream can make the gateway do.

Several cases need bytes an HTTP client library will not send (two `Authorization` headers, a
header name in odd case, CR/LF where a header value should be, a body that never finishes), so
they go over a raw socket. The runtime in front of the Worker (wrangler dev's workerd) may refuse
some of them itself; whichever layer answers, the defined outcome holds: an error or a closed
connection, never an authenticated call, never a forwarded header, never a hung Worker. Every raw
response is added to what the session's secret scan reads.

Complements test_errors.py (missing/wrong tokens, scheme case, caller header alphabet, 413) and
test_upstream_faults.py (stalls before the first byte, cut streams).
"""

from __future__ import annotations

import json
import re
import socket
import time

import httpx
import pytest

import conftest
from conftest import AGENT_TOKEN, AIG_TOKEN
from helpers import CHAT, GEMINI, Raw, body, raw_request, read_response

OK_BODY = json.dumps(body(model=GEMINI)).encode()


# --- raw requests (helpers' raw HTTP/1.1 client) -------------------------------------------------

def chat_lines(*headers: bytes, body_bytes: bytes = OK_BODY, path: bytes = CHAT.encode()) -> list[bytes]:
    return [
        b"POST " + path + b" HTTP/1.1",
        b"Content-Type: application/json",
        b"Content-Length: " + str(len(body_bytes)).encode(),
        *headers,
    ]


def chat(worker, *headers: bytes, body_bytes: bytes = OK_BODY, timeout: float = 20) -> Raw:
    """POST /v1/chat/completions with exactly these extra header lines and a real body."""
    return raw_request(worker, chat_lines(*headers, body_bytes=body_bytes), body_bytes, timeout)


def bearer(token: str = AGENT_TOKEN) -> bytes:
    return f"Bearer {token}".encode()


def assert_worker_still_serves(worker) -> None:
    with worker.client() as c:
        r = c.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 200, r.text


def forwarded_headers_are_clean(sim) -> None:
    """Whatever reached AI Gateway carried only the Worker's own headers, well formed."""
    for seen in sim.requests():
        h = seen["headers"]
        assert "x-injected" not in h and "injected" not in json.dumps(h).lower(), h
        assert "authorization" not in h, "a caller's Authorization must never be forwarded"
        meta = json.loads(h["cf-aig-metadata"])
        assert len(meta) <= 5
        for key in ("agent", "repo"):
            if key in meta:
                assert re.fullmatch(r"[A-Za-z0-9._/-]+", meta[key]), meta


# --- auth bypass attempts ----------------------------------------------------------------------

@pytest.mark.parametrize(
    "first, second",
    [
        (bearer(), bearer("wrong-token")),
        (bearer("wrong-token"), bearer()),
        (bearer(), bearer()),
        (b"Basic Zm9vOmJhcg==", bearer()),
        (bearer(), b"Basic Zm9vOmJhcg=="),
    ],
)
def test_duplicate_authorization_headers_are_refused(worker, sim, first, second):
    """Two Authorization headers are ambiguous (which one did the caller mean, which one would a
    proxy check?): refused, whatever their order, even when both carry the token. (The runtime
    joins them into one value, `a, b`, which is no token.)"""
    r = chat(worker, b"Authorization: " + first, b"Authorization: " + second)
    assert r.status in (400, 401), (r.status, r.body[:300])
    if r.status == 401:
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert sim.requests() == []


@pytest.mark.parametrize("order", ["empty first", "empty last"])
def test_an_empty_duplicate_authorization_header_grants_nothing(worker, sim, order):
    """An empty extra Authorization header is no credential: with the right token the outcome is
    whatever the runtime makes of the pair (it may drop the empty one); with a wrong token, 401."""
    for token, allowed in ((AGENT_TOKEN, (200, 400, 401)), ("wrong-token", (400, 401))):
        pair = [b"Authorization: ", b"Authorization: " + bearer(token)]
        r = chat(worker, *(pair if order == "empty first" else pair[::-1]))
        assert r.status in allowed, (token == AGENT_TOKEN, r.status, r.body[:300])


@pytest.mark.parametrize("name", [b"authorization", b"AUTHORIZATION", b"AuThOrIzAtIoN", b"Authorization"])
def test_header_name_case_does_not_matter(worker, sim, name):
    """Header names are case-insensitive (RFC 9110): the right token passes under any spelling,
    a wrong one fails under any spelling."""
    ok = chat(worker, name + b": " + bearer())
    assert ok.status == 200, ok.body[:300]
    bad = chat(worker, name + b": " + bearer(AGENT_TOKEN[:-1] + "x"))
    assert bad.status == 401
    assert len(sim.requests()) == 1


@pytest.mark.parametrize(
    "header",
    [
        b"X-Authorization: " + bearer(),
        b"Proxy-Authorization: " + bearer(),
        b"Authorization: Bearer",
        b"Authorization: Bearer " + AGENT_TOKEN.encode() + b"\x00",
        b"Authorization: Bearer " + AGENT_TOKEN.encode() + b"\r",
    ],
)
def test_near_miss_authorization_headers_are_refused(worker, sim, header):
    r = chat(worker, header)
    assert r.status is None or 400 <= r.status < 500, (r.status, r.body[:300])
    assert sim.requests() == []


@pytest.mark.parametrize("spelling", [b"Authorization:", b"Authorization :", b"Authorization:\t"])
def test_odd_spacing_is_the_same_header_or_refused(worker, sim, spelling):
    """No space after the colon is valid; a space before it is invalid (RFC 9112 5.1) but this
    runtime reads it as the same header. Either way it is never a way around the token: the
    right one may pass, a wrong one never does."""
    ok = chat(worker, spelling + b" " + bearer())
    assert ok.status in (200, 400), (ok.status, ok.body[:300])
    bad = chat(worker, spelling + b" " + bearer("wrong-token"))
    assert bad.status in (400, 401), (bad.status, bad.body[:300])
    assert len(sim.requests()) == (1 if ok.status == 200 else 0)


@pytest.mark.parametrize("param", ["api_key", "access_token", "token", "key", "authorization", "Authorization"])
def test_token_in_the_query_string_is_ignored(worker, sim, param):
    """A token is accepted only in the Authorization header: never from the URL (URLs end up in
    logs and browser history), and a URL's query never travels upstream."""
    value = AGENT_TOKEN if param.lower() != "authorization" else f"Bearer%20{AGENT_TOKEN}"
    with worker.client(token=None) as c:
        r = c.post(f"{CHAT}?{param}={value}", json=body(model=GEMINI))
    assert r.status_code == 401
    assert sim.requests() == []
    with worker.client() as c:
        r = c.post(f"{CHAT}?{param}={value}", json=body(model=GEMINI))
    assert r.status_code == 200
    [seen] = sim.requests()
    assert seen["query"] == ""
    assert AGENT_TOKEN not in json.dumps(seen)


def test_caller_credentials_never_travel_upstream(client, sim):
    """The caller's own credentials (its token, a provider key it might add) are not forwarded:
    AI Gateway sees only the Worker's CF_AIG_TOKEN."""
    r = client.post(CHAT, json=body(model=GEMINI), headers={
        "x-api-key": conftest.CALLER_PROVIDER_KEY if hasattr(conftest, "CALLER_PROVIDER_KEY") else "sk-caller",
        "cf-aig-authorization": "Bearer caller-chosen",
        "cookie": f"session={AGENT_TOKEN}",
    })
    assert r.status_code == 200
    [seen] = sim.requests()
    h = seen["headers"]
    assert h["cf-aig-authorization"] == f"Bearer {AIG_TOKEN}"
    assert AGENT_TOKEN not in json.dumps(h)
    assert "x-api-key" not in h and "cookie" not in h
    forwarded_headers_are_clean(sim)


# --- tenants -----------------------------------------------------------------------------------

def test_a_scoped_tokens_limits_name_no_other_tenant(workers):
    """One repository's agent reading /limits learns nothing of another's: no other agent, no
    repository outside its own, and no secret or stored token hash anywhere in the answer."""
    import urllib.parse
    import uuid

    tokens = workers["tokens"]
    rival_agent, rival_repo = f"RivalAgent{uuid.uuid4().hex[:8]}", f"rival-org/secret-{uuid.uuid4().hex[:8]}"
    triage_repo = f"triage-org/work-{uuid.uuid4().hex[:8]}"
    calls = [(AGENT_TOKEN, {"x-agent-name": rival_agent, "x-github-repository": rival_repo}),
             (conftest.TRIAGE, {"x-github-repository": triage_repo}),
             (conftest.REVIEW, {"x-github-repository": "octo-org/app"})]
    for token, headers in calls:
        with tokens.client(token=token) as c:
            assert c.post(CHAT, json=body(model=GEMINI), headers=headers).status_code == 200
    # Once the ledger has them all (rows are written after the answers).
    deadline = time.time() + 15
    while True:
        with tokens.client() as c:
            everything = c.get("/limits").text
        if all(n in everything for n in (rival_repo, rival_agent, triage_repo)) or time.time() > deadline:
            break
        time.sleep(0.3)
    assert rival_repo in everything and triage_repo in everything

    answers = []
    for token, params in [(conftest.REVIEW, {}), (conftest.REVIEW, {"repository": "octo-org/app"}),
                          (conftest.REVIEW, {"agent": "ReviewAgent"}), (conftest.TRIAGE, {}),
                          (conftest.REVIEW, {"repository": rival_repo}), (conftest.REVIEW, {"agent": rival_agent})]:
        with tokens.client(token=token) as c:
            r = c.get("/limits", params=params)
        assert r.status_code in (200, 403), r.text
        answers.append((token, r))
    for token, r in answers:
        head = "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        # A refused filter is named back to its sender only as the sender wrote it.
        named = json.dumps(r.json())
        asked = urllib.parse.unquote(str(r.request.url))
        for other in (rival_agent, rival_repo):
            assert other not in named or other in asked, (other, named)
        if token == conftest.REVIEW:
            assert triage_repo not in named and "TriagingAgent" not in named, named
        for secret in conftest.SECRETS:
            assert secret not in head and secret not in r.text, "a secret or a token hash in a /limits answer"


# --- oversize input ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "header",
    [
        b"X-Agent-Name: " + b"A" * 70_000,
        b"Authorization: Bearer " + b"x" * 70_000,
        b"X-Padding: " + b"p" * 200_000,
    ],
)
def test_oversize_headers_are_refused(worker, sim, header):
    """A header far over any sane size: refused (by the runtime with 431/400, or by the Worker's
    own checks), never forwarded, and the Worker keeps serving."""
    r = chat(worker, *([header] if header.startswith(b"Authorization") else [b"Authorization: " + bearer(), header]))
    assert r.status is None or 400 <= r.status < 500, (r.status, r.body[:300])
    assert sim.requests() == []
    assert_worker_still_serves(worker)


def test_many_headers_are_refused_or_ignored(worker, sim):
    headers = [b"X-H%d: %s" % (i, b"v" * 100) for i in range(2000)]
    r = chat(worker, b"Authorization: " + bearer(), *headers)
    if r.status == 200:
        # Accepted by the runtime: then none of them reached AI Gateway.
        [seen] = sim.requests()
        assert not any(k.startswith("x-h") for k in seen["headers"])
    else:
        assert r.status is None or 400 <= r.status < 500
        assert sim.requests() == []
    assert_worker_still_serves(worker)


def test_body_larger_than_declared_length_is_not_read_past_it(worker, sim):
    """Content-Length says 2 bytes, more follow: only the declared bytes are the body (`{}`, a
    400); the rest is never taken for part of it."""
    payload = b'{}' + OK_BODY
    r = raw_request(worker, [b"POST " + CHAT.encode() + b" HTTP/1.1", b"Content-Type: application/json",
                             b"Content-Length: 2", b"Authorization: " + bearer()], payload)
    assert r.status == 400, (r.status, r.body[:300])
    assert sim.requests() == []


@pytest.mark.parametrize("declared", [b"99999999999999999999", b"-1", b"1e3", b"12, 12"])
def test_bad_content_length_is_refused(worker, sim, declared):
    r = raw_request(worker, [b"POST " + CHAT.encode() + b" HTTP/1.1", b"Content-Type: application/json",
                             b"Content-Length: " + declared, b"Authorization: " + bearer()], OK_BODY, timeout=1.5)
    # The runtime refuses the framing itself (a plain-text error, or a closed connection); if the
    # Worker ever answered, it would be with its own 4xx.
    assert r.status is None or r.status >= 400, (r.status, r.body[:300])
    if r.body.startswith(b'{"error"'):
        assert 400 <= r.status < 500
    assert sim.requests() == []


# --- CR, LF and control characters in the caller headers ----------------------------------------

@pytest.mark.parametrize(
    "raw_value",
    [
        b"TriagingAgent\r\nX-Injected: 1",  # header splitting: on the wire this is a second header
        b"TriagingAgent\nX-Injected: 1",  # bare LF
        b"Triaging\rAgent",  # bare CR
        b"TriagingAgent\r\n X-Injected: 1",  # obsolete line folding
        b"Triaging\x00Agent",
        b"Triaging\x7fAgent",
        b"Triaging\tAgent",
        b"Tri\xc3\xa4gingAgent",  # UTF-8
        b'a","gateway":"evil',
    ],
)
@pytest.mark.parametrize("name", [b"X-Agent-Name", b"X-Github-Repository"])
def test_control_characters_in_caller_headers_never_reach_metadata(worker, sim, name, raw_value):
    value = raw_value if name == b"X-Agent-Name" else b"octo-org/" + raw_value
    r = chat(worker, b"Authorization: " + bearer(), name + b": " + value)
    assert r.status is None or r.status in (200, 400), (r.status, r.body[:300])
    if r.status == 400 and r.body.startswith(b"{"):
        assert r.json()["error"]["code"] == "invalid_request"
    if r.status == 200:
        # Only a value the runtime cut at the line end can pass: the clean part, and the rest
        # (a separate header on the wire) is not forwarded.
        [seen] = sim.requests()
        meta = json.loads(seen["headers"]["cf-aig-metadata"])
        assert meta.get("agent", "TriagingAgent") == "TriagingAgent"
    forwarded_headers_are_clean(sim)


# --- an answer that breaks off -----------------------------------------------------------------
# An upstream that is slow or silent meets the runtime's deadlines: the first byte's
# (test_upstream_faults.py), a whole answer's and a stream's idle ones (test_engine_in_the_runtime.py,
# test_chat.py). What follows each (retry, next target, the error) is the engine simulation's.

def test_body_cut_half_way_is_never_a_200(client, sim):
    sim.fault("google-ai-studio", {"kind": "cut_after_first_chunk"}, times=2)
    r = client.post(CHAT, json=body(model=GEMINI))
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "upstream_malformed_response"


# --- a request body that never finishes ----------------------------------------------------------

def test_request_body_that_never_finishes_does_not_reach_upstream_or_wedge_the_worker(worker, sim):
    """Slowloris: a declared body that never arrives. Nothing is forwarded (the body is never
    complete), the connection is not answered with a success, and other callers are served
    meanwhile. If the runtime gives up first, its answer is an error."""
    host = f"127.0.0.1:{worker.port}".encode()
    head = b"\r\n".join([
        b"POST " + CHAT.encode() + b" HTTP/1.1", b"Host: " + host, b"Content-Type: application/json",
        b"Content-Length: 4096", b"Authorization: " + bearer(), b"", b"",
    ])
    with socket.create_connection(("127.0.0.1", worker.port), timeout=10) as slow:
        slow.sendall(head + OK_BODY[:20])
        # While it waits, the Worker serves everyone else.
        assert_worker_still_serves(worker)
        slow.sendall(b" ")  # a trickle
        r = read_response(slow, time.monotonic() + 1, "raw slow body")
        assert r.status is None or r.status >= 400, (r.status, r.body[:300])
    # Exactly the one request of assert_worker_still_serves reached AI Gateway.
    assert len(sim.requests()) == 1
    assert_worker_still_serves(worker)


def test_chunked_body_that_never_ends_is_cut_at_the_size_limit(worker, sim):
    """A chunked body that goes on and on: refused with 413 once past MAX_BODY_BYTES (64 KiB in
    the suite), without waiting for an end that never comes."""
    host = f"127.0.0.1:{worker.port}".encode()
    head = b"\r\n".join([
        b"POST " + CHAT.encode() + b" HTTP/1.1", b"Host: " + host, b"Content-Type: application/json",
        b"Transfer-Encoding: chunked", b"Authorization: " + bearer(), b"", b"",
    ])
    chunk = b"y" * 4096
    with socket.create_connection(("127.0.0.1", worker.port), timeout=10) as s:
        s.sendall(head + b"%x\r\n%s\r\n" % (len(OK_BODY[:30]), OK_BODY[:30]))
        # 68 KiB: just past the limit, and the body is still not ended. (Sending much more after
        # the 413 would only get the connection reset under the unread rest.)
        for _ in range(17):
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        r = read_response(s, time.monotonic() + 15, "raw endless chunked body")
    assert r.status == 413, (r.status, r.body[:300])
    assert json.loads(r.body)["error"]["code"] == "payload_too_large"
    assert sim.requests() == []
    # wrangler dev's local proxy (not the Worker: under `workerd serve` the next request is answered
    # at once) leaves the first request after this one unanswered. Spend that request here, with a
    # short timeout, so the next test, whichever it is, meets a proxy that serves.
    with worker.client() as c:
        try:
            c.get("/healthz", timeout=1)
        except httpx.TimeoutException:
            pass
    assert_worker_still_serves(worker)
