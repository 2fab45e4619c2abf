"""`agw setup` and `agw doctor` as an operator runs them, against the simulator and the Worker:
setup stores keys given on stdin, and doctor checks the deployment end to end through the
Worker's native routes, naming what is wrong and how to fix it."""

from __future__ import annotations

import os
import subprocess

from conftest import ACCOUNT_ID, AGENT_TOKEN, AIG_REFUSES_THE_TOKEN, API_TOKEN, GATEWAY_ID, ROOT, SECRETS

AGW = ROOT / "target" / "debug" / "agw"


def agw(sim, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "CF_ACCOUNT_ID": ACCOUNT_ID,
        "AI_GATEWAY_ID": GATEWAY_ID,
        "CF_API_URL": f"{sim.url}/client/v4",
        "AI_GATEWAY_URL": f"{sim.url}/v1",
        "CF_API_TOKEN": API_TOKEN,
    }
    run = subprocess.run(
        [str(AGW), *args, "--config", str(ROOT / "gateway.config.json")],
        input=stdin, capture_output=True, text=True, timeout=120, env={**base, **env},
    )
    for secret in SECRETS:
        assert secret not in run.stdout + run.stderr, "agw printed a secret"
    return run


def test_setup_then_doctor_through_the_worker(sim, worker):
    # The e2e gateway already has authentication and logs on; keep its cache off for the suite.
    setup = agw(sim, "setup", "--cache-ttl", "0", "--keys-from-stdin",
                stdin="openai=sk-e2e-openai\nanthropic=sk-e2e-anthropic\ngoogle-ai-studio=e2e-gemini\n")
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert (f"gateway {GATEWAY_ID}: already as needed" in setup.stdout
            or f"gateway {GATEWAY_ID}: updated" in setup.stdout), setup.stdout
    for provider in ("openai", "anthropic", "google-ai-studio"):
        assert f"key {provider}: stored" in setup.stdout or f"key {provider}: already stored" in setup.stdout
    assert "sk-e2e-openai" not in setup.stdout

    doctor = agw(sim, "doctor", "--worker-url", worker.url, AGENT_TOKEN=AGENT_TOKEN)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    for line in [
        f"ok    gateway `{GATEWAY_ID}` exists",
        "ok    authentication is on",
        f"ok    the Worker at {worker.url} is healthy",
        "ok    google-ai-studio/gemini-3.5-flash-lite answers through the Worker",
        "ok    openai/gpt-4o-mini answers through the Worker",
        "ok    anthropic/claude-haiku-4-5 answers through the Worker",
        "ok    the logs API reads",
        "all checks passed",
    ]:
        assert line in doctor.stdout, f"missing {line!r} in\n{doctor.stdout}"
    # The one-token requests went through the Worker's native routes to AI Gateway.
    paths = [r["path"] for r in sim.requests()]
    assert any(p.endswith("/anthropic/v1/messages") for p in paths), paths
    assert any(p.endswith(":generateContent") for p in paths), paths


def test_doctor_names_the_fix(sim, workers):
    wrong = agw(sim, "doctor", "--worker-url", workers["main"].url, AGENT_TOKEN="not-the-token")
    assert wrong.returncode == 1
    assert "FAIL  openai/gpt-4o-mini through the Worker: HTTP 401" in wrong.stdout, wrong.stdout
    assert "fix: AGENT_TOKEN is not the Worker's token" in wrong.stdout

    # AI Gateway refuses the Worker's CF_AIG_TOKEN: its answer to every inference call.
    sim.fault("*", AIG_REFUSES_THE_TOKEN, times=100)
    refused = agw(sim, "doctor", "--worker-url", workers["main"].url, AGENT_TOKEN=AGENT_TOKEN)
    sim.reset()
    assert refused.returncode == 1
    assert "HTTP 502" in refused.stdout, refused.stdout
    assert "npx wrangler secret put CF_AIG_TOKEN" in refused.stdout

    unconfigured = agw(sim, "doctor", "--worker-url", workers["unconfigured"].url, AGENT_TOKEN=AGENT_TOKEN)
    assert unconfigured.returncode == 1
    assert "is not healthy" in unconfigured.stdout and "AGENT_TOKEN" in unconfigured.stdout
