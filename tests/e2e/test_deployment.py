"""What the Worker says when a part of its deployment is missing: a binding of wrangler.toml, or
the ledger's table (its migrations never applied). A missing part is the deployment's fault: a
5xx that names it, never a 429 that would tell the caller to slow down, and /healthz names it too
(never a value). The ledger is the books, not the request path: without its table chat still
answers, and the operator is told once what to run."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest

from conftest import ROOT, WRANGLER
from helpers import assert_openai_error, wait_for_log

CHAT = {"model": "triage", "messages": [{"role": "user", "content": "Label this issue"}]}
HEADERS = {"x-agent-name": "TriagingAgent", "x-github-repository": "octo-org/octo-repo"}
MIGRATE = "npx wrangler d1 migrations apply LEDGER --local"


@pytest.fixture(scope="module")
def no_limiter(workers):
    """The session's `no-limiter` Worker: wrangler.toml without its LIMITER binding."""
    return workers["no-limiter"]


@pytest.fixture(scope="module")
def unmigrated(workers):
    """The session's `budget` Worker: its ledger's migrations were never applied."""
    return workers["budget"]


def test_a_worker_without_its_limiter_binding_refuses_chat_with_a_503_that_names_it(no_limiter, sim):
    with no_limiter.client() as c:
        r = c.post("/v1/chat/completions", json=CHAT, headers=HEADERS)
        err = assert_openai_error(r, 503, "limiter_unavailable", "Durable Object binding `LIMITER`")
        assert err["type"] == "server_error"
        # Nothing is spent without a limiter to count it.
        assert sim.requests() == []
        assert r.headers["x-gateway-attempts"] == "0"
        assert r.headers["x-gateway-trace"].count("=skipped:limiter_unavailable") == 3, r.headers["x-gateway-trace"]
        health = c.get("/healthz")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "misconfigured"
        assert body["missing_bindings"] == ["LIMITER (Durable Object class ProviderLimiter)"]
        # What needs no limiter still answers.
        assert c.get("/v1/models").status_code == 200


def test_without_the_ledger_table_chat_answers_and_the_operator_is_told_what_to_run(unmigrated):
    with unmigrated.client() as c:
        for _ in range(2):
            r = c.post("/v1/chat/completions", json=CHAT, headers=HEADERS)
            assert r.status_code == 200, r.text
        health = c.get("/healthz")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "misconfigured" and body["missing_bindings"] == []
        assert MIGRATE in body["ledger"], body
        r = c.get("/analytics", params={"format": "json"})
        assert_openai_error(r, 503, "ledger_unavailable", MIGRATE)
    # The failed writes are said once per isolate, with the fix, not once per request (the
    # Worker's other tests wrote, and failed to, before or after: still one line).
    wait_for_log(unmigrated, '"event":"ledger_schema_missing"')
    time.sleep(1)  # the second request's write, had it logged too
    lines = [line for line in unmigrated.log_path.read_text(errors="replace").splitlines()
             if '"event":"ledger_schema_missing"' in line]
    assert len(lines) == 1, lines
    assert MIGRATE in lines[0]


def transfer_blocks() -> list[str]:
    """The `[[migrations]]` blocks docs/operations.md gives a deployment moving from two Workers."""
    from docs_examples import blocks

    found = [b.text for b in blocks(ROOT / "docs" / "operations.md") if b.lang == "toml" and "transferred_classes" in b.text]
    assert len(found) == 2, "docs/operations.md: expected the two transfer migrations"
    return found


@pytest.mark.parametrize("block", transfer_blocks(), ids=["never-held", "held-before"])
def test_the_documented_transfer_migrations_validate(block, tmp_path):
    """wrangler.toml with its migrations replaced by the documented ones, as the docs say to do:
    `wrangler deploy --dry-run` (offline) accepts the config and bundles the Worker."""
    text = (ROOT / "wrangler.toml").read_text()
    # (Without the [build] step: the Worker is built, and the config is not beside the Makefile.)
    for table in (r"\[\[migrations\]\]", r"\[build\]"):
        text = re.sub(rf"(?m)^{table}\n(?:[^\[\n].*\n)*", "", text)
    text += "\n" + block
    assert "new_sqlite_classes" not in text.replace(block, ""), "wrangler.toml's own migration was not removed"
    config = tmp_path / "wrangler.toml"
    config.write_text(text.replace('main = "build/index.js"', f'main = "{ROOT / "build" / "index.js"}"')
                      .replace('migrations_dir = "migrations"', f'migrations_dir = "{ROOT / "migrations"}"'))
    done = subprocess.run(
        [str(WRANGLER), "deploy", "--dry-run", "--outdir", str(tmp_path / "out"), "--config", str(config)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, WRANGLER_SEND_METRICS="false", CI="true", NO_COLOR="1"),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "--dry-run: exiting now" in done.stdout + done.stderr
