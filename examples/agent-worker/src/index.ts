// A triaging agent that is itself a Worker: it asks agent-gateway for answers over the GATEWAY
// Service Binding, with the official OpenAI SDK, exactly as it would over the public URL.
//
//   POST /triage          {"issue": "...", "repository": "owner/name"?} → {"answer": "..."}
//   POST /triage/stream   same body → the answer streamed as it is written, one JSON line a piece
//
// Both pass on the gateway's decision headers (x-gateway-provider, x-gateway-model, ...) and, when
// the gateway refuses (a wrong AGENT_TOKEN: 401), its status and OpenAI-shaped error. (These routes
// only show the pattern: a real agent is started by a GitHub webhook and checks its signature.)

import OpenAI from "openai";
import type { ChatCompletionChunk } from "openai/resources/chat/completions";
import type { Stream } from "openai/streaming";

export interface Env {
  GATEWAY: Fetcher; // [[services]] binding = "GATEWAY", service = "agent-gateway"
  AGENT_TOKEN: string; // a secret: npx wrangler secret put AGENT_TOKEN
}

const INSTRUCTIONS = "Label this GitHub issue: bug, feature or question, and say why.";

// Over a Service Binding the request goes straight to the gateway Worker: the host of the base URL
// is never resolved, only the path (/v1/chat/completions) matters.
function gateway(env: Env, repository?: string): OpenAI {
  return new OpenAI({
    baseURL: "https://agent-gateway/v1",
    apiKey: env.AGENT_TOKEN,
    // Bound: the SDK calls fetch with `this` undefined, and a binding's fetch needs its binding.
    fetch: env.GATEWAY.fetch.bind(env.GATEWAY),
    // The gateway retries and fails over within its deadline; retrying here too would multiply it.
    maxRetries: 0,
    defaultHeaders: {
      "x-agent-name": "TriagingAgent",
      ...(repository ? { "x-github-repository": repository } : {}),
    },
  });
}

async function triage(env: Env, issue: string, repository?: string): Promise<Response> {
  const { data, response } = await gateway(env, repository)
    .chat.completions.create({
      model: "triage",
      messages: [
        { role: "system", content: INSTRUCTIONS },
        { role: "user", content: issue },
      ],
    })
    .withResponse();
  return Response.json({ answer: data.choices[0]?.message.content ?? "" }, { headers: decisions(response.headers) });
}

async function triageStream(env: Env, issue: string, repository?: string): Promise<Response> {
  const { data: stream, response } = await gateway(env, repository)
    .chat.completions.create({
      model: "triage",
      messages: [
        { role: "system", content: INSTRUCTIONS },
        { role: "user", content: issue },
      ],
      stream: true,
    })
    .withResponse();
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  void relay(stream, writable);
  const headers = decisions(response.headers);
  headers.set("content-type", "application/x-ndjson");
  return new Response(readable, { headers });
}

// One JSON line per piece of text as it arrives, `{"text": "..."}`, then `{"done": true}`; or, when
// the gateway ends the stream with an error (the SDK throws), `{"error": {...}}`. The last line says
// how it ended: a Worker's response stream that fails still ends like a complete one on the wire.
async function relay(stream: Stream<ChatCompletionChunk>, writable: WritableStream<Uint8Array>): Promise<void> {
  const writer = writable.getWriter();
  const encoder = new TextEncoder();
  const send = (line: object) => writer.write(encoder.encode(JSON.stringify(line) + "\n"));
  try {
    try {
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta?.content;
        if (text) await send({ text });
      }
      await send({ done: true });
    } catch (error) {
      await send({ error: error instanceof OpenAI.APIError && error.error ? error.error : { message: String(error) } });
    }
    await writer.close();
  } catch {
    // The caller went away (leaving the loop cancelled the gateway's stream): nobody to tell.
  }
}

const DECISION_HEADERS = [
  "x-gateway-provider",
  "x-gateway-model",
  "x-gateway-attempts",
  "x-gateway-trace",
  "x-gateway-cost-usd",
  "cf-aig-log-id",
  "cf-aig-cache-status",
];

function decisions(from: Headers | undefined): Headers {
  const headers = new Headers();
  for (const name of DECISION_HEADERS) {
    const value = from?.get(name);
    if (value !== null && value !== undefined) headers.set(name, value);
  }
  return headers;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { pathname } = new URL(request.url);
    const route = pathname === "/triage" ? triage : pathname === "/triage/stream" ? triageStream : undefined;
    if (!route) return Response.json({ error: { message: "not found" } }, { status: 404 });
    if (request.method !== "POST") {
      return Response.json({ error: { message: "use POST" } }, { status: 405, headers: { allow: "POST" } });
    }
    const body = await request.json<{ issue?: unknown; repository?: unknown }>().catch(() => null);
    if (typeof body?.issue !== "string") {
      return Response.json({ error: { message: 'expected {"issue": "..."}' } }, { status: 400 });
    }
    const repository = typeof body.repository === "string" ? body.repository : undefined;
    try {
      return await route(env, body.issue, repository);
    } catch (error) {
      // The gateway's own answer (401 for a wrong token, 429, 5xx…): pass on its status and error.
      if (error instanceof OpenAI.APIError && error.status !== undefined) {
        return Response.json({ error: error.error }, { status: error.status, headers: decisions(error.headers) });
      }
      if (error instanceof OpenAI.APIConnectionError) {
        return Response.json({ error: { message: `gateway unreachable: ${error.message}` } }, { status: 502 });
      }
      throw error;
    }
  },
} satisfies ExportedHandler<Env>;
