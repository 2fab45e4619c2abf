"""A panic in the wasm takes down one request, not the Worker: the next request is served.

The entry (js/entry.mjs) calls the generated handler without worker-build's per-request Proxies;
recovery comes from wasm-bindgen's glue, which makes a fresh instance of the module at the next
call after a trap. The session's `rest` Worker sets GATEWAY_TEST_PANIC_PATH, the test-only
trigger: a request to exactly that path panics (after an await, as a panic in a real handler
would). Nothing else sets it (not wrangler.toml, not the suite's other Workers), so it cannot be
reached in production; the main Worker below answers that path with a plain 404.
"""

from __future__ import annotations

import pytest

from conftest import PANIC_PATH
from helpers import CHAT, wait_for_log

def chat(client, text: str, **extra):
    # No caller headers: the Worker's budgets panel (test_budgets_panel.py) counts each scope.
    return client.post(CHAT, json={"model": "default", "messages": [{"role": "user", "content": text}], **extra})


@pytest.fixture(scope="module")
def panicking(workers):
    return workers["rest"]


def test_the_request_after_a_panic_is_served(panicking):
    with panicking.client() as c:
        # Served before: the limiter's Durable Object exists on the first instance.
        first = chat(c, "before the panic")
        assert first.status_code == 200, first.text

        for round in range(2):
            broken = c.get(PANIC_PATH)
            assert broken.status_code == 500, broken.text

            after = chat(c, f"after panic {round}")
            assert after.status_code == 200, after.text
            assert after.json()["choices"][0]["message"]["content"].endswith(f"after panic {round}")
            assert after.headers["x-gateway-provider"] == "google-ai-studio"

            streamed = chat(c, f"streamed after panic {round}", stream=True)
            assert streamed.status_code == 200, streamed.text
            assert "data: [DONE]" in streamed.text

            health = c.get("/healthz")
            assert health.status_code == 200 and health.json()["status"] == "ok"

    assert "GATEWAY_TEST_PANIC_PATH requested" in wait_for_log(panicking, "GATEWAY_TEST_PANIC_PATH requested")


def test_the_trigger_is_off_unless_configured(worker):
    with worker.client() as c:
        r = c.get(PANIC_PATH)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
