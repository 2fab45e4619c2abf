"""An agent that is itself a Worker reaches the gateway over a Service Binding, with no public hop.

examples/agent-worker (the OpenAI SDK with `fetch` bound to its GATEWAY binding) and the built
gateway run together in one `wrangler dev`: the agent is the primary Worker, served on the port;
the gateway is only reachable through the binding. The agent's AGENT_TOKEN is a scoped token
(TriagingAgent, `octo-org/*`): the gateway checks it over the binding as over HTTP, so an issue of
another repository is refused (403) with nothing sent to AI Gateway. (A wrong token is a 401 by
the same check: test_errors.py, test_native_routes.py.)
"""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path

import httpx
import pytest

import conftest
from conftest import (
    AGENT_TOKEN,
    ARTIFACTS,
    ROOT,
    STARTED,
    Worker,
    base_values,
    declare_worker,
    dotenv_json,
    sha256,
    write_e2e_wrangler_toml,
)

EXAMPLE = ROOT / "examples" / "agent-worker"
BOUND_TOKEN = "agt-bound-" + secrets.token_hex(16)
# The agent's token and its stored hash must not come back either.
conftest.SECRETS += [BOUND_TOKEN, sha256(BOUND_TOKEN)]
REPO = "octo-org/octo-repo"


def write_dev_vars(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


def write_agent_wrangler_toml(directory: Path) -> Path:
    """The example's own wrangler.toml, with only `main` made absolute, in a directory of its own
    (its .dev.vars holds the test's token, never in the repository)."""
    lines = [
        f'main = "{EXAMPLE / "src" / "index.ts"}"' if line.strip().startswith("main =") else line
        for line in (EXAMPLE / "wrangler.toml").read_text().splitlines()
    ]
    path = directory / "wrangler.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class BoundPair(Worker):
    """`wrangler dev -c agent -c gateway`: the first config is served on the port, the gateway
    only through the first one's [[services]] binding. Each Worker reads the .dev.vars beside its
    own config, so the agent holds nothing but its AGENT_TOKEN."""

    def __init__(self, name: str, gateway_values: dict[str, str], agent_token: str):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = ARTIFACTS / f"worker-{name}.log"
        self.log_path.write_bytes(b"")
        self.home = Path(tempfile.mkdtemp(prefix=f"agw-{name}-"))
        (self.home / "gateway").mkdir()
        (self.home / "agent").mkdir()
        self.gateway_config = write_e2e_wrangler_toml(self.home / "gateway")
        write_dev_vars(self.home / "gateway" / ".dev.vars", gateway_values)
        self.config = write_agent_wrangler_toml(self.home / "agent")
        write_dev_vars(self.home / "agent" / ".dev.vars", {"AGENT_TOKEN": agent_token})
        self.starts = 0
        STARTED.append(self)
        self.start()

    def configs(self) -> list[Path]:
        return [self.config, self.gateway_config]

    def dev_flags(self) -> list[str]:
        return []


@declare_worker("service-binding")
def bound_pair(sim) -> BoundPair:
    # The gateway also takes the suite's AGENT_TOKEN (which the agent does not hold).
    tokens = {sha256(BOUND_TOKEN): {"agent": "TriagingAgent", "repositories": ["octo-org/*"]}}
    return BoundPair("service-binding", base_values(sim, AGENT_TOKENS=dotenv_json(tokens)), BOUND_TOKEN)


@pytest.fixture()
def agent(workers):
    # No token: the agent Worker holds its own; the caller of /triage never sees it.
    with workers["service-binding"].client(token=None) as c:
        yield c


def test_a_chat_answer_through_the_binding(agent, sim):
    r = agent.post("/triage", json={"issue": "The app crashes on start", "repository": REPO})
    assert r.status_code == 200, r.text
    assert r.json() == {"answer": "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: The app crashes on start"}
    assert r.headers["x-gateway-provider"] == "google-ai-studio"
    assert r.headers["x-gateway-model"] == "gemini-3.5-flash-lite"
    assert r.headers["x-gateway-attempts"] == "1"
    assert r.headers["x-gateway-trace"] == "google-ai-studio/gemini-3.5-flash-lite=200"

    # It really went through the gateway: AI Gateway saw the gateway's credential and the agent's
    # metadata, never the agent's token.
    [seen] = sim.requests()
    h = seen["headers"]
    assert h["cf-aig-authorization"] == f"Bearer {conftest.AIG_TOKEN}"
    assert BOUND_TOKEN not in json.dumps(h) and AGENT_TOKEN not in json.dumps(h)
    meta = json.loads(h["cf-aig-metadata"])
    assert (meta["agent"], meta["repo"], meta["route"]) == ("TriagingAgent", "octo-org/octo-repo", "triage")
    assert r.headers["cf-aig-log-id"] == seen["log_id"]


def test_decision_headers_of_a_failover_survive_the_binding(agent, sim):
    sim.fault("google-ai-studio", {"kind": "status", "status": 401})
    r = agent.post("/triage", json={"issue": "Gemini's key was revoked", "repository": REPO})
    assert r.status_code == 200, r.text
    assert r.json()["answer"] == "Simulated answer from openai/gpt-4o-mini: Gemini's key was revoked"
    assert r.headers["x-gateway-provider"] == "openai"
    assert r.headers["x-gateway-model"] == "gpt-4o-mini"
    assert r.headers["x-gateway-attempts"] == "2"
    assert r.headers["x-gateway-trace"] == "google-ai-studio/gemini-3.5-flash-lite=401, openai/gpt-4o-mini=200"


def stream_lines(r: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in r.iter_lines() if line]


def test_a_stream_through_the_binding(agent, sim):
    with agent.stream("POST", "/triage/stream", json={"issue": "Flaky test in CI", "repository": REPO}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "application/x-ndjson"
        assert r.headers["x-gateway-provider"] == "google-ai-studio"
        assert r.headers["x-gateway-model"] == "gemini-3.5-flash-lite"
        assert r.headers["x-gateway-attempts"] == "1"
        lines = stream_lines(r)
    assert lines[-1] == {"done": True}
    # The simulator streams the answer a word at a time: each piece came as its own line.
    assert len(lines) > 3
    assert "".join(line["text"] for line in lines[:-1]) == (
        "Simulated answer from google-ai-studio/gemini-3.5-flash-lite: Flaky test in CI"
    )
    [seen] = sim.requests()
    assert json.loads(seen["body"])["stream"] is True


def test_a_stream_failing_after_its_first_content_says_so(agent, sim):
    """After its first content the gateway ends a failing stream with an error event; the SDK
    throws, and the agent's last line is that error: never `done` after half an answer."""
    sim.fault("google-ai-studio", {"kind": "cut_after_first_chunk"})
    with agent.stream("POST", "/triage/stream", json={"issue": "Cut me off", "repository": REPO}) as r:
        assert r.status_code == 200
        lines = stream_lines(r)
    assert lines[0] == {"text": "Simulated"}
    assert {"done": True} not in lines
    assert lines[-1]["error"]["message"], lines


@pytest.mark.parametrize("path", ["/triage", "/triage/stream"])
def test_the_agent_token_is_still_checked_over_the_binding(agent, sim, path):
    """A binding is no way around the token: the agent's scoped token does not reach another
    repository; the agent gets the SDK's PermissionDeniedError (403), passed back with the
    gateway's error; AI Gateway is never called."""
    r = agent.post(path, json={"issue": "Let me in", "repository": "evil-org/app"})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "token_scope_mismatch"
    assert r.headers["x-gateway-model"] == "none"
    assert r.headers["x-gateway-attempts"] == "0"
    assert sim.requests() == []


def test_the_agent_answers_only_its_routes(agent, sim):
    assert agent.get("/triage").status_code == 405
    assert agent.post("/triage", content=b"not json").status_code == 400
    # The gateway's own routes are not exposed by the agent: the binding is the agent's alone.
    assert agent.post("/v1/chat/completions", json={}).status_code == 404
    assert sim.requests() == []
