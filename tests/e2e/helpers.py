"""What the end-to-end tests share beyond the processes conftest.py starts: the requests they make,
how they read and check answers, a raw HTTP/1.1 client for bytes no library sends, and the
recorder of everything the Worker sent back (`SEEN`), which the session's secret scan reads.

Every test imports these from here, never from another test file."""

from __future__ import annotations

import json
import socket
import threading
import time
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import urlparse

import httpx
import httpx2

CHAT = "/v1/chat/completions"
GEMINI = "google-ai-studio/gemini-3.5-flash-lite"
PICO = Decimal(10) ** 12

# Everything the Worker sent back during the session: (description, headers, body).
SEEN: list[tuple[str, str, bytes]] = []


def body(model="triage", text="The build fails on main", **extra) -> dict:
    """A chat request body."""
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def sse_events(raw: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order."""
    events = []
    for block in raw.decode().split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data:
            events.append("\n".join(data))
    return events


def assert_openai_error(r: httpx.Response, status: int, code: str, needle: str = "") -> dict:
    """`r` is the OpenAI error shape with this status and code, its message containing `needle`."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    err = r.json()["error"]
    assert set(err) >= {"message", "type", "code"}
    assert err["code"] == code, err
    assert needle.lower() in err["message"].lower(), err
    return err


def pico(usd) -> int:
    """Exact picodollars of a decimal amount (a header's text, or a JSON number read as Decimal)."""
    value = Decimal(str(usd)) * PICO
    assert value == value.to_integral_value(), usd
    return int(value)


def pico_nearest(usd) -> int:
    """Picodollars of an amount that may have more digits (AI Gateway's costs), to the nearest."""
    return int((Decimal(usd) * PICO).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def limits_of(worker) -> dict:
    """`/limits`' providers by name, amounts as Decimal."""
    with worker.client() as c:
        r = c.get("/limits")
    assert r.status_code == 200, r.text
    listing = json.loads(r.text, parse_float=Decimal)
    return {p["provider"]: p for p in listing["providers"]}


def settled(worker, timeout: float = 15) -> dict:
    """`limits_of` once no provider holds a reservation (books are closed after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        state = limits_of(worker)
        if all(p["outstanding_reservations"] == 0 for p in state.values()) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def ledger_rows(worker, request_id: str, timeout: float = 10) -> list[dict]:
    """The ledger's rows of one request, once written (rows are written after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = worker.ledger("SELECT * FROM attempts WHERE request_id = ? ORDER BY attempt", (request_id,))
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def wait_for_log(worker, needle: str, timeout: float = 15) -> str:
    """The Worker's log once it holds `needle` (wrangler writes it a moment after the request)."""
    deadline = time.monotonic() + timeout
    while True:
        log = worker.log_path.read_text(errors="replace")
        if needle in log or time.monotonic() > deadline:
            return log
        time.sleep(0.2)


class WebhookReceiver:
    """An incoming-webhook endpoint on `port`: keeps every JSON body posted to it. Its URL ends
    in a part that stands for the token Slack's and Discord's URLs carry."""

    def __init__(self, port: int):
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("content-length", 0))
                receiver.posts.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/secret-part"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


# --- recording what the Worker sent back -------------------------------------------------------


def _recording_transport(http):
    """A transport of `http` (`httpx`, or `httpx2`: the anthropic SDK's own copy of it) that keeps
    what the Worker answered (headers and body) for the secret scan at the end, passing the body
    through untouched (streams stay streams)."""

    class Stream(http.SyncByteStream):
        def __init__(self, inner, what: str, head: str):
            self.inner, self.what, self.head, self.data = inner, what, head, bytearray()

        def __iter__(self):
            for chunk in self.inner:
                self.data += chunk
                yield chunk

        def close(self):
            self.inner.close()
            SEEN.append((self.what, self.head, bytes(self.data)))

    class Transport(http.HTTPTransport):
        def handle_request(self, request):
            response = super().handle_request(request)
            head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
            return http.Response(
                status_code=response.status_code,
                headers=response.headers,
                stream=Stream(response.stream, f"{request.method} {request.url}", head),
                extensions=response.extensions,
            )

    return Transport


RecordingTransport = _recording_transport(httpx)
_Recording2Transport = _recording_transport(httpx2)


def openai_sdk(worker, token: str, **options):
    """The official OpenAI SDK on `worker`'s `/v1`, as the agent uses it, its answers recorded.
    `max_retries=0`: the gateway owns retries; a test must see the first answer."""
    from openai import OpenAI

    return OpenAI(
        base_url=f"{worker.url}/v1", api_key=token, max_retries=0, timeout=30, http_client=recording_client(), **options
    )


def recording_client() -> httpx.Client:
    """An `httpx` client for an SDK (OpenAI's, Google's) whose answers are recorded."""
    return httpx.Client(transport=RecordingTransport(), timeout=30)


def recording_client2() -> httpx2.Client:
    """An `httpx2` client for the anthropic SDK whose answers are recorded."""
    return httpx2.Client(transport=_Recording2Transport(), timeout=30)


# --- a raw HTTP/1.1 client ---------------------------------------------------------------------
# For bytes an HTTP library will not send (two `Authorization` headers, odd header spelling, a
# path no client would tidy, a body that never finishes) and for a caller that hangs up. Every
# response read is recorded.


class Raw:
    """One response read off a socket: status None when the connection closed without one."""

    def __init__(self, status: int | None, head: str, body: bytes):
        self.status, self.head, self.body = status, head, body

    def json(self) -> dict:
        return json.loads(self.body)


def read_response(sock: socket.socket, deadline: float, what: str = "raw") -> Raw:
    """One HTTP/1.1 response, read to its end (its Content-Length, or its last chunk), never to
    the connection's close: the dev server keeps a connection open for a while."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            chunk = b""
        if not chunk:
            SEEN.append((what, "", data))
            return Raw(None, "", data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()

    def more() -> bytes:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            return sock.recv(65536)
        except (socket.timeout, ConnectionResetError):
            return b""

    if "content-length" in headers:
        need = int(headers["content-length"])
        while len(rest) < need and time.monotonic() < deadline and (chunk := more()):
            rest += chunk
        body = rest[:need]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while not rest.endswith(b"0\r\n\r\n") and time.monotonic() < deadline and (chunk := more()):
            rest += chunk
        body, at = b"", 0
        while True:
            end = rest.find(b"\r\n", at)
            if end < 0:
                break
            size = int(rest[at:end].split(b";")[0] or b"0", 16)
            if size == 0:
                break
            body += rest[end + 2 : end + 2 + size]
            at = end + 2 + size + 2
    else:
        body = rest
    raw = Raw(status, "\n".join(lines[1:]), body)
    SEEN.append((what, raw.head, raw.body))
    return raw


def send_raw(worker, request: bytes, timeout: float = 20) -> Raw:
    """Sends exactly `request` on a new connection and reads one response."""
    with socket.create_connection(("127.0.0.1", worker.port), timeout=timeout) as sock:
        sock.sendall(request)
        return read_response(sock, time.monotonic() + timeout, f"raw {request[:60]!r}")


def raw_request(worker, head_lines: list[bytes], payload: bytes = b"", timeout: float = 20) -> Raw:
    """Sends the request line, a Host header, then exactly `head_lines[1:]` and `payload`."""
    host = f"127.0.0.1:{worker.port}".encode()
    request = b"\r\n".join(head_lines[:1] + [b"Host: " + host] + head_lines[1:] + [b"Connection: close", b"", b""])
    return send_raw(worker, request + payload, timeout)


def hang_up_mid_stream(worker, token: str, request: dict, path: str = CHAT) -> bytes:
    """POSTs a streamed request over a raw socket, reads its headers and first content (the
    simulator's answers start with "Simulated"), then hangs up; what it read."""
    url = urlparse(worker.url)
    payload = json.dumps(request).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.hostname}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port), timeout=10) as s:
        s.sendall(head + payload)
        got = b""
        while b"Simulated" not in got:
            chunk = s.recv(4096)
            assert chunk, got
            got += chunk
    SEEN.append((f"hung up mid-stream: POST {path}", "", got))
    return got


def header_of(raw_head: bytes, name: str) -> str | None:
    """A header's value in raw response bytes."""
    for line in raw_head.split(b"\r\n"):
        if line.lower().startswith(name.lower().encode() + b":"):
            return line.split(b":", 1)[1].strip().decode()
    return None
