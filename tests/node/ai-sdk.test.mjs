// Vercel's AI SDK against the Worker, through its OpenAI-compatible provider.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { APICallError, Output, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';

import {
  AGENT_HEADERS,
  AGENT_TOKEN,
  BASE_URL,
  answerOf,
  flushRecords,
  promptTokens,
  recordingFetch,
  unique,
  upstreamRequest,
  upstreamRequests,
  words,
} from './_support.mjs';

const provider = (options = {}) =>
  createOpenAICompatible({
    name: 'agent-gateway',
    baseURL: BASE_URL,
    apiKey: AGENT_TOKEN,
    headers: AGENT_HEADERS,
    fetch: recordingFetch,
    supportsStructuredOutputs: true,
    ...options,
  });

const gateway = provider();

after(flushRecords);

// The SDK retries on its own by default; the gateway already does.
const once = { maxRetries: 0 };

describe('AI SDK', () => {
  test('generateText: the answer, its usage and the decision headers', async () => {
    const text = unique('Is this issue a bug?');
    const result = await generateText({ ...once, model: gateway('triage'), prompt: text });
    const content = answerOf(text);
    assert.equal(result.text, content);
    assert.equal(result.finishReason, 'stop');
    assert.equal(result.usage.inputTokens, promptTokens(text));
    assert.equal(result.usage.outputTokens, words(content));
    assert.equal(result.usage.totalTokens, promptTokens(text) + words(content));
    const headers = result.response.headers;
    assert.equal(headers['x-gateway-provider'], 'google-ai-studio');
    assert.equal(headers['x-gateway-model'], 'gemini-3.5-flash-lite');
    assert.equal(headers['x-gateway-attempts'], '1');
    assert.ok(Number(headers['x-gateway-cost-usd']) > 0);

    const upstream = await upstreamRequest(text);
    assert.equal(JSON.parse(upstream.body).model, 'google-ai-studio/gemini-3.5-flash-lite');
    assert.equal(JSON.parse(upstream.headers['cf-aig-metadata']).agent, 'TriagingAgent');
  });

  test('streamText: the text stream, usage at the end', async () => {
    const text = unique('Review this pull request');
    const result = streamText({ ...once, model: gateway('review'), prompt: text });
    let streamed = '';
    let deltas = 0;
    for await (const delta of result.textStream) {
      streamed += delta;
      deltas += 1;
    }
    const content = answerOf(text);
    assert.equal(streamed, content);
    assert.ok(deltas > 1, 'streamed in pieces');
    assert.equal(await result.finishReason, 'stop');
    // The provider was not told to ask for usage (`includeUsage`); the Worker asks anyway.
    const usage = await result.usage;
    assert.equal(usage.inputTokens, promptTokens(text));
    assert.equal(usage.outputTokens, words(content));
    const response = await result.response;
    assert.equal(response.headers['x-gateway-provider'], 'google-ai-studio');
    assert.equal(response.headers['x-gateway-attempts'], '1');
  });

  test('generateText with a tool: call, execute, answer (two steps)', async () => {
    const text = unique('Label this issue: crash on save');
    const seen = [];
    const result = await generateText({
      ...once,
      model: gateway('triage'),
      prompt: text,
      tools: {
        add_label: tool({
          description: 'Put one label on the issue',
          inputSchema: z.object({ label: z.enum(['bug', 'feature']), reason: z.string() }),
          execute: async (input) => {
            seen.push(input);
            return { ok: true };
          },
        }),
      },
      stopWhen: stepCountIs(3),
    });
    assert.deepEqual(seen, [{ label: 'bug', reason: text }]);
    assert.equal(result.steps.length, 2);
    assert.equal(result.steps[0].finishReason, 'tool-calls');
    assert.equal(result.steps[0].toolCalls[0].toolName, 'add_label');
    assert.equal(result.text, answerOf(text));
    assert.equal(result.totalUsage.outputTokens, result.steps[0].usage.outputTokens + result.steps[1].usage.outputTokens);

    const [first, second] = await upstreamRequests(text);
    const tools = JSON.parse(first.body).tools;
    assert.equal(tools[0].function.name, 'add_label');
    assert.deepEqual(tools[0].function.parameters.required, ['label', 'reason']);
    const followUp = JSON.parse(second.body).messages;
    assert.equal(followUp.at(-1).role, 'tool');
  });

  test('streamText with a tool: input deltas, then the parsed call', async () => {
    const text = unique('Label this issue: typo in README');
    const result = streamText({
      ...once,
      model: gateway('triage'),
      prompt: text,
      tools: { add_label: tool({ inputSchema: z.object({ label: z.enum(['bug', 'docs']), reason: z.string() }) }) },
    });
    let inputText = '';
    let inputDeltas = 0;
    const calls = [];
    for await (const part of result.fullStream) {
      if (part.type === 'tool-input-delta') {
        inputText += part.delta;
        inputDeltas += 1;
      }
      if (part.type === 'tool-call') calls.push(part);
      if (part.type === 'error') throw part.error;
    }
    assert.ok(inputDeltas > 1, `the input came in pieces (${inputDeltas})`);
    assert.deepEqual(JSON.parse(inputText), { label: 'bug', reason: text });
    assert.equal(calls.length, 1);
    assert.equal(calls[0].toolName, 'add_label');
    assert.deepEqual(calls[0].input, { label: 'bug', reason: text });
    assert.equal(await result.finishReason, 'tool-calls');
    assert.equal((await result.usage).outputTokens, inputDeltas);
  });

  test('structured output: the JSON schema goes upstream, the object comes back', async () => {
    const text = unique('Classify: add dark mode');
    const schema = z.object({ kind: z.enum(['feature', 'bug']), summary: z.string(), priority: z.number() });
    const result = await generateText({
      ...once,
      model: gateway('triage'),
      prompt: text,
      output: Output.object({ schema, name: 'triage' }),
    });
    assert.deepEqual(result.output, { kind: 'feature', summary: text, priority: 1 });
    const upstream = await upstreamRequest(text);
    const format = JSON.parse(upstream.body).response_format;
    assert.equal(format.type, 'json_schema');
    assert.equal(format.json_schema.name, 'triage');
    assert.deepEqual(format.json_schema.schema.properties.kind, { type: 'string', enum: ['feature', 'bug'] });
  });

  test('APICallError with the status on a wrong token', async () => {
    const stranger = provider({ apiKey: 'not-the-agent-token' });
    await assert.rejects(generateText({ ...once, model: stranger('triage'), prompt: 'x' }), (err) => {
      assert.ok(APICallError.isInstance(err), err);
      assert.equal(err.statusCode, 401);
      assert.equal(err.isRetryable, false);
      assert.match(err.responseBody, /invalid_api_key/);
      return true;
    });
  });
});
