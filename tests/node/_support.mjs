// Shared by the Node SDK tests (tests/node/*.test.mjs): where the Worker and the simulator are,
// a recording `fetch` for the secret scan, and the simulator's control API.
//
// The tests are driven by tests/e2e/test_node_sdks.py, which starts the Workers and sets:
//   BASE_URL          the main Worker's OpenAI base URL (`http://127.0.0.1:PORT/v1`)
//   LIMITED_BASE_URL  a Worker allowing 1 request per minute to Gemini, OpenAI and Anthropic, which no other test calls
//   AGENT_TOKEN       the session's random agent token
//   SIM_URL           the AI Gateway simulator (`/__sim/` control API)
//   SEEN_FILE         a JSON-lines file: every response the Worker sent, for the secret scan

import { appendFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import OpenAI from 'openai';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/e2e/test_node_sdks.py`);
  return value;
}

export const BASE_URL = required('BASE_URL');
export const LIMITED_BASE_URL = required('LIMITED_BASE_URL');
export const AGENT_TOKEN = required('AGENT_TOKEN');
export const SIM_URL = required('SIM_URL');
const SEEN_FILE = required('SEEN_FILE');

// The `triage` and `review` aliases try Gemini first; the simulator answers deterministically.
export const GEMINI = 'google-ai-studio/gemini-3.5-flash-lite';
export const answerOf = (text, target = GEMINI) => `Simulated answer from ${target}: ${text}`;

// Who is calling: these go to AI Gateway as `cf-aig-metadata`.
export const AGENT_HEADERS = { 'x-agent-name': 'TriagingAgent', 'x-github-repository': 'octo-org/octo-repo' };

/** A user message nobody else sends, so the simulator's record of it can be found. */
export function unique(text) {
  return `${text} [${randomBytes(6).toString('hex')}]`;
}

// Request bodies as sent, by URL + body text (for comparing with what the simulator received).
export const sentBodies = [];
const pending = new Set();

/**
 * `fetch` that keeps a copy of every response (headers and the whole body, streams included,
 * also when they break) in SEEN_FILE, without slowing the caller: the body is teed and the copy
 * is read alongside.
 */
export async function recordingFetch(input, init = {}) {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const method = init.method ?? (typeof input === 'object' && 'method' in input ? input.method : 'GET');
  if (typeof init.body === 'string') sentBodies.push(init.body);
  const response = await fetch(input, init);
  const head = [...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
  const copy = response.clone();
  const done = (async () => {
    const chunks = [];
    let broken = false;
    try {
      if (copy.body) for await (const chunk of copy.body) chunks.push(Buffer.from(chunk));
    } catch {
      broken = true; // a cut stream: keep what came before the cut
    }
    const line = JSON.stringify({
      what: `node ${method} ${url} -> ${response.status}${broken ? ' (body broken)' : ''}`,
      headers: head,
      body_b64: Buffer.concat(chunks).toString('base64'),
    });
    appendFileSync(SEEN_FILE, line + '\n');
  })();
  pending.add(done);
  done.finally(() => pending.delete(done));
  return response;
}

/** Waits until every response copy is written (call from an `after` hook). */
export async function flushRecords() {
  await Promise.all([...pending]);
}

async function sim(method, path, body) {
  const response = await fetch(SIM_URL + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`simulator ${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** What the simulator (AI Gateway) received: the records whose body contains `marker`. */
export async function upstreamRequests(marker) {
  const all = await sim('GET', '/__sim/requests');
  return all.filter((r) => r.body.includes(marker));
}

/** The one upstream request carrying `marker`. */
export async function upstreamRequest(marker) {
  const found = await upstreamRequests(marker);
  if (found.length !== 1) throw new Error(`expected one upstream request with ${marker}, got ${found.length}`);
  return found[0];
}

/** Queues a simulator fault for `provider` (see crates/aig-sim/README.md). */
export function queueFault(provider, fault, times = 1) {
  return sim('POST', '/__sim/faults', { provider, fault, times });
}

/** Drops queued faults and everything recorded (requests, logs, cache). */
export function resetSim() {
  return sim('POST', '/__sim/reset');
}

/** The simulated prompt tokens of plain-text messages (crates/aig-sim/README.md). */
export const promptTokens = (...texts) => texts.reduce((sum, t) => sum + Math.ceil([...t].length / 4) + 4, 0);
/** The simulated thinking of a Gemini 2.5+ model (twice the prompt): reported apart, billed as output. */
export const thinkingTokens = (...texts) => 2 * promptTokens(...texts);
/** The simulated completion tokens: words in the answer. */
export const words = (text) => text.split(/\s+/).filter(Boolean).length;

/** The official OpenAI SDK on the main Worker, as the agent builds it: maxRetries 0 (the
 * gateway retries and fails over itself; SDK retries would multiply attempts), its answers
 * recorded for the secret scan. */
export const openaiClient = (options = {}) =>
  new OpenAI({
    baseURL: BASE_URL,
    apiKey: AGENT_TOKEN,
    maxRetries: 0,
    timeout: 30_000,
    defaultHeaders: AGENT_HEADERS,
    fetch: recordingFetch,
    ...options,
  });
