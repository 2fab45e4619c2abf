-- The ledger of record: one row per attempt the Worker made through AI Gateway (chat and native
-- routes alike), written after the response (one batch per request, in waitUntil).
-- Money is integer picodollars (1 USD = 10^12); D1 hands numbers to JavaScript as doubles, so
-- sums are read back as TEXT (CAST(SUM(..) AS TEXT)) and parsed as integers, never as floats.
CREATE TABLE IF NOT EXISTS attempts (
  request_id     TEXT    NOT NULL,  -- one id per request (every attempt of it shares it)
  attempt        INTEGER NOT NULL,  -- 1-based over the whole request (fallbacks included)
  ts_ms          INTEGER NOT NULL,  -- when the attempt started, Unix ms (UTC)
  day            INTEGER NOT NULL,  -- UTC day number of ts_ms (days since 1970-01-01)
  route          TEXT    NOT NULL,  -- 'chat' (/v1/chat/completions) or 'native' (/{provider}/...)
  alias          TEXT,              -- the route alias (triage, review, ...), when one was used
  provider       TEXT    NOT NULL,  -- our provider name (gemini, openai, anthropic, ...)
  model          TEXT    NOT NULL,  -- the model as our configuration names it
  agent          TEXT,              -- x-agent-name
  repository     TEXT,              -- x-github-repository (owner/name)
  outcome        TEXT    NOT NULL,  -- as in x-gateway-trace: '200', '429', 'timeout', 'unreachable', ...
  status         INTEGER,           -- the attempt's HTTP status; NULL when nothing answered
  success        INTEGER NOT NULL,  -- 1 when the attempt's answer went to the caller
  tokens_in      INTEGER,           -- prompt tokens, cached ones included; NULL when unknown
  tokens_out     INTEGER,           -- completion tokens (thinking included); NULL when unknown
  tokens_cached  INTEGER,           -- prompt tokens the provider's prompt cache served
  cost_pico      INTEGER,           -- our price table's cost of that usage; NULL when unknown
  charged_pico   INTEGER NOT NULL,  -- what the budget was charged for this attempt
  cache          TEXT,              -- cf-aig-cache-status (HIT, MISS, ...)
  log_id         TEXT,              -- cf-aig-log-id: the join key with AI Gateway's logs
  latency_ms     INTEGER NOT NULL,  -- attempt start to its end (a stream's: to its last byte)
  latency_bucket INTEGER NOT NULL,  -- the analytics histogram's bucket of latency_ms
  stream         INTEGER NOT NULL,  -- 1 for a streamed answer
  PRIMARY KEY (request_id, attempt)
);

-- /analytics reads a range of days; the cron prunes by day.
CREATE INDEX IF NOT EXISTS attempts_by_day ON attempts (day);
-- The cross-check with AI Gateway's logs joins on its log id.
CREATE INDEX IF NOT EXISTS attempts_by_log_id ON attempts (log_id) WHERE log_id IS NOT NULL;
