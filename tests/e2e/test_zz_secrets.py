"""Runs last (file order): no secret ever came back in a response header or body, or appeared in
a line the Worker logged, across everything the suite did before."""

import conftest
from conftest import ARTIFACTS, SECRETS, SEEN


def test_responses_never_contain_a_secret(workers):
    # The suite made dozens of calls; an empty record would mean the recorder broke.
    assert len(SEEN) > 50, len(SEEN)
    leaks = [
        (what, secret[:6])
        for what, head, body in SEEN
        for secret in SECRETS
        if secret in head or secret.encode() in body
    ]
    assert leaks == []


def test_worker_logs_never_contain_a_secret(workers):
    for worker in workers.values():
        worker.stop()  # flush and close the log
    logs = sorted(ARTIFACTS.glob("worker-*.log")) + sorted(ARTIFACTS.glob("sim*.log"))
    assert len(logs) >= len(workers)
    structured = 0
    for path in logs:
        for line in path.read_text(errors="replace").splitlines():
            # With more than one Worker in a `wrangler dev`, each line is prefixed with the
            # Worker's name (`[agent-gateway] {...}`).
            structured += line.removeprefix("[agent-gateway] ").startswith('{"event":"chat_completion"')
            for secret in conftest.SECRETS:
                assert secret not in line, f"{path.name}: a secret in a log line"
    # The Worker did log its decisions (one line per chat request), so the scan saw real lines.
    assert structured > 50, structured
