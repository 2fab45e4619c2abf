-- What the providers really answer: thinking billed as output, answers from another model than
-- asked, and Gemini's thought signatures kept for the next turn of a tool loop.
ALTER TABLE attempts ADD COLUMN tokens_reasoning INTEGER;  -- of tokens_out, the thinking; NULL when unknown
ALTER TABLE attempts ADD COLUMN answered_model TEXT;      -- the model that answered, when not `model` (priced as it)

-- Gemini's thought signatures this gateway relayed (tool calls), for the clients that do not
-- send them back: one row per (caller, call id), kept an hour. `key` is a hash of both; neither
-- is stored in clear.
CREATE TABLE IF NOT EXISTS signatures (
  key            TEXT    NOT NULL PRIMARY KEY,
  signature      TEXT    NOT NULL,
  model          TEXT    NOT NULL,  -- the model that issued it (re-attached only for it)
  expires_at_ms  INTEGER NOT NULL
);
-- The cron prunes what expired.
CREATE INDEX IF NOT EXISTS signatures_by_expiry ON signatures (expires_at_ms);
