#!/usr/bin/env bash
# `make dev`: the Worker in `wrangler dev`, against the bundled AI Gateway simulator when .dev.vars
# points at loopback (as .dev.vars.example does), or against Cloudflare when it holds real values.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-8787}
log() { printf '\033[1;34m[dev]\033[0m %s\n' "$*" >&2; }

if [ ! -f .dev.vars ]; then
  cp .dev.vars.example .dev.vars
  log "wrote .dev.vars from .dev.vars.example (local simulator settings)"
fi

# Reads KEY from .dev.vars (dotenv: KEY=value, optional quotes), without sourcing it as shell.
var() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" .dev.vars | tail -n1 | sed 's/^"\(.*\)"$/\1/; s/^'"'"'\(.*\)'"'"'$/\1/'; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

gateway_url=$(var AI_GATEWAY_URL)
case "$gateway_url" in
  http://127.0.0.1:*|http://localhost:*)
    sim_listen=$(printf '%s' "$gateway_url" | sed -E 's#^http://([^/]+).*#\1#; s#^localhost#127.0.0.1#')
    log "starting the AI Gateway simulator on $sim_listen"
    SIM_GATEWAY_TOKEN=$(var CF_AIG_TOKEN) SIM_API_TOKEN=$(var CF_API_TOKEN) \
      target/debug/aig-sim --listen "$sim_listen" \
        --account-id "$(var CF_ACCOUNT_ID)" --gateway-id "$(var AI_GATEWAY_ID)" >/dev/null &
    pids+=($!)
    ;;
  *)
    # (A quote inside ${x:-...} within double quotes is quoting to bash 5.2: keep words plain.)
    where=${gateway_url:-the default https://gateway.ai.cloudflare.com/v1}
    log "AI_GATEWAY_URL is $where: talking to Cloudflare, no simulator started"
    ;;
esac

log "starting wrangler dev on http://127.0.0.1:$PORT"
npx wrangler dev --ip 127.0.0.1 --port "$PORT" --show-interactive-dev-session=false &
pids+=($!)

for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.5
done
health=$(curl -sS "http://127.0.0.1:$PORT/healthz" || true)

cat >&2 <<MSG

  agent-gateway is running at http://127.0.0.1:$PORT   (Ctrl-C stops it)
  health: $health

  Try it (the token is read from .dev.vars, not printed):

    curl -sS http://127.0.0.1:$PORT/v1/chat/completions \\
      -H "Authorization: Bearer \$(sed -n 's/^AGENT_TOKEN=//p' .dev.vars)" \\
      -H 'Content-Type: application/json' \\
      -H 'x-agent-name: TriagingAgent' -H 'x-github-repository: octo-org/octo-repo' \\
      -d '{"model":"triage","messages":[{"role":"user","content":"Label this issue: the build fails"}]}' -i

  Streaming: add "stream": true to the body (and -N to curl).
  OpenAI SDK: OpenAI(base_url="http://127.0.0.1:$PORT/v1", api_key=<AGENT_TOKEN>)

MSG
wait
