#!/usr/bin/env bash
# `make dev`: the Worker in `wrangler dev`, against the bundled AI Gateway simulator when
# .dev.vars points at loopback (as .dev.vars.example does), or against Cloudflare when it holds
# real values. PORT (default 8787) is wrangler's port. Ctrl-C stops everything it started.
# `scripts/dev.sh simulator` (`make simulator`): the simulator alone, in the foreground, for a
# plain `npx wrangler dev` in another terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
case "$mode" in
  all | simulator) ;;
  *) echo "usage: $0 [simulator]" >&2; exit 2 ;;
esac
PORT=${PORT:-8787}
log() { printf '\033[1;34m[dev]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[dev]\033[0m %s\n' "$*" >&2; exit 1; }

case "$PORT" in
  '' | *[!0-9]*) die "PORT=$PORT is not a port number" ;;
esac

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  log "wrote .dev.vars from .dev.vars.example (local simulator settings)"
fi

# Reads KEY from .dev.vars (dotenv: KEY=value, optional quotes), without sourcing it as shell.
var() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" .dev.vars | tail -n1 | sed 's/^"\(.*\)"$/\1/; s/^'"'"'\(.*\)'"'"'$/\1/'; }

# Something accepts connections on 127.0.0.1:$1 (bash's /dev/tcp: no extra tool needed).
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
require_free() { # port, whose, what to do instead
  if listening "$1"; then
    die "port $1 ($2) is already in use on 127.0.0.1: stop what listens there (another make dev?), or $3"
  fi
}

# Each background process runs in a process group of its own (set -m), so that stopping it reaches
# its children too: wrangler runs workerd, which would otherwise outlive a wrangler stopped hard
# and keep the port. Ctrl-C reaches this script, whose EXIT trap stops every group.
groups=()
sim_out=
# shellcheck disable=SC2317  # reached through the EXIT trap
stop() {
  trap - EXIT INT TERM HUP
  local g alive
  for g in ${groups[@]+"${groups[@]}"}; do kill -TERM -- "-$g" 2>/dev/null || true; done
  # wrangler shuts workerd down on SIGTERM; give it 10 s, then stop what is left.
  for _ in $(seq 1 50); do
    alive=
    for g in ${groups[@]+"${groups[@]}"}; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
    [ -n "$alive" ] || break
    sleep 0.2
  done
  for g in ${groups[@]+"${groups[@]}"}; do kill -KILL -- "-$g" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -z "$sim_out" ] || rm -f "$sim_out"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

[ "$mode" = simulator ] || require_free "$PORT" "wrangler dev" "choose another with PORT=8790 make dev"

gateway_url=$(var AI_GATEWAY_URL)
case "$gateway_url" in
  http://127.0.0.1:*|http://localhost:*)
    sim_listen=$(printf '%s' "$gateway_url" | sed -E 's#^http://([^/]+).*#\1#; s#^localhost#127.0.0.1#')
    require_free "${sim_listen##*:}" "the simulator, from AI_GATEWAY_URL in .dev.vars" \
      "point AI_GATEWAY_URL and CF_API_URL in .dev.vars at another port"
    log "starting the AI Gateway simulator on $sim_listen"
    sim_out=$(mktemp "${TMPDIR:-/tmp}/agw-sim.XXXXXX")
    set -m
    SIM_GATEWAY_TOKEN=$(var CF_AIG_TOKEN) SIM_API_TOKEN=$(var CF_API_TOKEN) \
      target/debug/aig-sim --listen "$sim_listen" \
        --account-id "$(var CF_ACCOUNT_ID)" --gateway-id "$(var AI_GATEWAY_ID)" </dev/null >"$sim_out" &
    sim_pid=$!
    set +m
    groups+=("$sim_pid")
    # It prints its address once it listens, or why it cannot on stderr, and exits.
    for _ in $(seq 1 100); do
      grep -q listening "$sim_out" && break
      kill -0 "$sim_pid" 2>/dev/null || die "the simulator did not start (its error is above)"
      sleep 0.1
    done
    grep -q listening "$sim_out" || die "the simulator did not start listening on $sim_listen in 10 s"
    ;;
  *)
    # (A quote inside ${x:-...} within double quotes is quoting to bash 5.2: keep words plain.)
    where=${gateway_url:-the default https://gateway.ai.cloudflare.com/v1}
    [ "$mode" = simulator ] && die "AI_GATEWAY_URL in .dev.vars is $where, not the simulator's loopback address"
    log "AI_GATEWAY_URL is $where: talking to Cloudflare, no simulator started"
    ;;
esac

if [ "$mode" = simulator ]; then
  log "the simulator is answering on $sim_listen; in another terminal: npx wrangler dev (Ctrl-C stops it)"
  status=0
  wait "$sim_pid" || status=$?
  exit "$status"
fi

# The ledger's schema, in the local D1 database wrangler dev uses (.wrangler/state): applied
# migrations are recorded there, so this is quick after the first time.
log "applying the ledger's migrations (migrations/) to the local D1 database"
migrate_out=$(node_modules/.bin/wrangler d1 migrations apply LEDGER --local </dev/null 2>&1) \
  || die "wrangler d1 migrations apply failed: $migrate_out"

# The command a Cloudflare user types, with the port and no interactive key bindings.
log "starting wrangler dev on http://127.0.0.1:$PORT"
set -m
node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false </dev/null &
wrangler_pid=$!
set +m
groups+=("$wrangler_pid")

# Ready when /healthz answers (200, or 503 naming what is misconfigured).
health=
for _ in $(seq 1 240); do
  if health=$(curl -sS --max-time 2 "http://127.0.0.1:$PORT/healthz" 2>/dev/null); then break; fi
  health=
  kill -0 "$wrangler_pid" 2>/dev/null || die "wrangler dev exited before it answered (its error is above)"
  sleep 0.5
done
[ -n "$health" ] || die "wrangler dev did not answer on http://127.0.0.1:$PORT/healthz within 2 minutes"

cat >&2 <<MSG

  agent-gateway is running at http://127.0.0.1:$PORT   (Ctrl-C stops it)
  health: $health

  Try it, from this directory (the token is read from .dev.vars, not printed):

    curl -sS http://127.0.0.1:$PORT/v1/chat/completions \\
      -H "Authorization: Bearer \$(sed -n 's/^AGENT_TOKEN=//p' .dev.vars)" \\
      -H 'Content-Type: application/json' \\
      -H 'x-agent-name: TriagingAgent' -H 'x-github-repository: octo-org/octo-repo' \\
      -d '{"model":"triage","messages":[{"role":"user","content":"Label this issue: the build fails"}]}' -i

  Streaming: add "stream": true to the body (and -N to curl).
  OpenAI SDK: base URL http://127.0.0.1:$PORT/v1, API key AGENT_TOKEN from .dev.vars
  (README.md has the Python and TypeScript examples).

MSG
status=0
if [ -n "${sim_pid:-}" ]; then
  # Whichever stops first ends the session: without its simulator, the gateway would answer
  # every chat with a 502 while looking alive.
  wait -n "$wrangler_pid" "$sim_pid" || status=$?
  if kill -0 "$wrangler_pid" 2>/dev/null; then
    log "the AI Gateway simulator exited (status $status): stopping wrangler dev too"
    [ "$status" -ne 0 ] || status=1
  else
    log "wrangler dev exited (status $status)"
  fi
else
  wait "$wrangler_pid" || status=$?
  log "wrangler dev exited (status $status)"
fi
exit "$status"
