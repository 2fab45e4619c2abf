"""The agent's own clients: the official Node `openai` package and Vercel's AI SDK
(`ai` + `@ai-sdk/openai-compatible`), run by Node's test runner (tests/node/*.test.mjs) against
the Workers of this session and the simulator.

Everything the Node tests received from the Worker goes into the secret scan (`SEEN`)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import AGENT_TOKEN, ARTIFACTS, ROOT
from helpers import SEEN

NODE_TESTS = ROOT / "tests" / "node"


@pytest.fixture(scope="module")
def limited(workers):
    """One request per minute for Gemini, OpenAI and Anthropic, for `RateLimitError`: the
    session's `tight` Worker, whose other test uses Bedrock only."""
    return workers["tight"]


def test_node_openai_and_ai_sdk(sim, worker, limited):
    node = shutil.which("node")
    assert node, "node is not on PATH"
    seen_file = ARTIFACTS / "node-seen.jsonl"
    seen_file.unlink(missing_ok=True)
    env = dict(
        os.environ,
        BASE_URL=f"{worker.url}/v1",
        LIMITED_BASE_URL=f"{limited.url}/v1",
        AGENT_TOKEN=AGENT_TOKEN,
        SIM_URL=sim.url,
        SEEN_FILE=str(seen_file),
        NO_COLOR="1",
    )
    files = sorted(str(p.relative_to(ROOT)) for p in NODE_TESTS.glob("*.test.mjs"))
    assert len(files) >= 2, files
    proc = subprocess.run(
        # One file at a time: both look at the simulator's record of requests.
        [node, "--test", "--test-reporter=spec", "--test-concurrency=1", *files],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    (ARTIFACTS / "node-tests.log").write_text(output)

    records = [json.loads(line) for line in seen_file.read_text().splitlines()] if seen_file.exists() else []
    for r in records:
        SEEN.append((r["what"], r["headers"], base64.b64decode(r["body_b64"])))

    assert proc.returncode == 0, f"node --test failed (exit {proc.returncode}):\n{output}"
    summary = dict(re.findall(r"^ℹ (tests|pass|fail) (\d+)$", output, re.M))
    assert summary.get("fail") == "0" and int(summary.get("pass", 0)) >= 20, output
    # Every response the SDKs got was recorded (a broken recorder would hide leaks).
    assert len(records) >= 25, (len(records), output)
