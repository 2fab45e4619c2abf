// The official Node `openai` package against the Worker, as the agent uses it: baseURL + apiKey,
// maxRetries 0 (the gateway retries and fails over itself; SDK retries would multiply attempts).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';

import {
  GEMINI,
  LIMITED_BASE_URL,
  answerOf,
  flushRecords,
  promptTokens,
  thinkingTokens,
  queueFault,
  sentBodies,
  unique,
  upstreamRequest,
  upstreamRequests,
  openaiClient,
  words,
} from './_support.mjs';

const client = openaiClient;

const openai = client();

after(flushRecords);

const addLabel = {
  type: 'function',
  function: {
    name: 'add_label',
    description: 'Put one label on the issue',
    parameters: {
      type: 'object',
      properties: {
        label: { type: 'string', enum: ['bug', 'feature', 'question'] },
        reason: { type: 'string' },
      },
      required: ['label', 'reason'],
      additionalProperties: false,
    },
    strict: true,
  },
};
const closeIssue = {
  type: 'function',
  function: { name: 'close_issue', parameters: { type: 'object', properties: { duplicate_of: { type: 'integer' } } } },
};
// The simulated model calls the first tool (or the one `tool_choice` names) with arguments
// sampled from its schema: the first enum value, the user's text for other strings.
const argumentsFor = (text) => JSON.stringify({ label: 'bug', reason: text });

// The shipped routes' output caps: a request without its own limit is sent its route's.
const shipped = JSON.parse(readFileSync(new URL('../../gateway.config.json', import.meta.url), 'utf8'));
const outputCap = (alias) => shipped.routes[alias]?.max_output_tokens ?? shipped.estimates.max_output_tokens;

/** What the Worker must have sent upstream: the SDK's own body, byte for byte, but for `model`
 * and, when the SDK set no output limit, the route's cap appended. */
function expectForwardedIntact(upstream, marker, alias, target = GEMINI) {
  const sent = sentBodies.filter((b) => b.includes(marker));
  assert.equal(sent.length, 1, 'the SDK request body was recorded');
  let expected = sent[0].replace(`"model":"${alias}"`, `"model":"${target}"`);
  if (!/"max_(completion_)?tokens"/.test(expected)) {
    expected = `${expected.slice(0, -1)},"max_tokens":${outputCap(alias)}}`;
  }
  assert.equal(upstream.body, expected);
}

function assertDecisionHeaders(headers, { provider = 'google-ai-studio', model = 'gemini-3.5-flash-lite', attempts = '1' } = {}) {
  assert.equal(headers.get('x-gateway-provider'), provider);
  assert.equal(headers.get('x-gateway-model'), model);
  assert.equal(headers.get('x-gateway-attempts'), attempts);
  assert.match(headers.get('x-gateway-trace'), new RegExp(`${provider}/${model}=200`));
  assert.match(headers.get('cf-aig-log-id'), /^[0-9A-Z]{26}$/);
  assert.equal(headers.get('cf-aig-cache-status'), 'MISS');
}

describe('chat completions', () => {
  test('non-streamed, with the decision headers from .withResponse()', async () => {
    const text = unique('Is this issue a bug or a feature request?');
    const { data, response } = await openai.chat.completions
      .create({ model: 'triage', messages: [{ role: 'user', content: text }] })
      .withResponse();
    assert.equal(response.status, 200);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.choices[0].message.content, answerOf(text));
    assert.equal(data.choices[0].finish_reason, 'stop');
    const content = answerOf(text);
    // `usage.cost` (USD) is what the request was charged: the same exact decimal as the header.
    const cost = response.headers.get('x-gateway-cost-usd');
    assert.deepEqual(data.usage, {
      prompt_tokens: promptTokens(text),
      completion_tokens: words(content),
      completion_tokens_details: { reasoning_tokens: thinkingTokens(text) },
      total_tokens: promptTokens(text) + words(content) + thinkingTokens(text),
      cost: Number(cost),
    });
    assertDecisionHeaders(response.headers);
    assert.ok(Number(cost) > 0, cost);

    const upstream = await upstreamRequest(text);
    assert.equal(upstream.log_id, response.headers.get('cf-aig-log-id'));
    const metadata = JSON.parse(upstream.headers['cf-aig-metadata']);
    assert.equal(metadata.agent, 'TriagingAgent');
    assert.equal(metadata.repo, 'octo-org/octo-repo');
    assert.equal(upstream.headers.authorization, undefined, "the agent's token never goes upstream");
    expectForwardedIntact(upstream, text, 'triage');
  });

  test('.asResponse() gives the raw fetch Response', async () => {
    const text = unique('Summarise this thread');
    const response = await openai.chat.completions
      .create({ model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: text }] })
      .asResponse();
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-gateway-provider'), 'openai');
    assert.equal(response.headers.get('x-gateway-model'), 'gpt-4o-mini');
    assert.equal(response.headers.get('x-gateway-attempts'), '1');
    const body = await response.json();
    assert.equal(body.choices[0].message.content, answerOf(text, 'openai/gpt-4o-mini'));
  });

  test('for await streaming: the deltas concatenate to the answer, usage comes last', async () => {
    const text = unique('Review this diff please');
    const { data: stream, response } = await openai.chat.completions
      .create({ model: 'review', messages: [{ role: 'user', content: text }], stream: true })
      .withResponse();
    // Headers are there before the body is read.
    assertDecisionHeaders(response.headers);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    let content = '';
    let deltas = 0;
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      if (chunk.choices[0]?.delta?.content) {
        content += chunk.choices[0].delta.content;
        deltas += 1;
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(content, answerOf(text));
    assert.equal(deltas, words(answerOf(text)), 'one event per word, relayed as they came');
    assert.equal(finish, 'stop');
    // The Worker asks for the usage chunk (the agent did not): it is relayed, not hidden.
    assert.equal(usage.completion_tokens, words(answerOf(text)));
    assert.equal(usage.prompt_tokens, promptTokens(text));
    // The stream's cost, which its headers could not carry, is in its final usage event.
    assert.equal(typeof usage.cost, 'number');
    assert.ok(usage.cost > 0, String(usage.cost));
    assert.equal(response.headers.get('x-gateway-cost-usd'), null);
    const upstream = await upstreamRequest(text);
    assert.deepEqual(JSON.parse(upstream.body).stream_options, { include_usage: true });
  });

  test('the .stream() helper: events, then finalChatCompletion()', async () => {
    const text = unique('Triage: the login page is blank');
    const stream = openai.chat.completions.stream({
      model: 'triage',
      messages: [{ role: 'user', content: text }],
      stream_options: { include_usage: true },
    });
    let fromEvents = '';
    stream.on('content', (delta) => {
      fromEvents += delta;
    });
    const final = await stream.finalChatCompletion();
    assert.equal(fromEvents, answerOf(text));
    assert.equal(final.choices[0].message.content, answerOf(text));
    assert.equal(final.choices[0].message.role, 'assistant');
    assert.equal(final.choices[0].finish_reason, 'stop');
    assert.equal(final.usage.completion_tokens, words(answerOf(text)));
    assert.equal(await stream.finalContent(), answerOf(text));
  });

  test('a stream cut after its first content raises APIError, never a clean end', async () => {
    await queueFault('google-ai-studio', { kind: 'cut_after_first_chunk' });
    const stream = await openai.chat.completions.create({
      model: 'triage',
      messages: [{ role: 'user', content: unique('Will this stream end?') }],
      stream: true,
    });
    let content = '';
    await assert.rejects(
      async () => {
        for await (const chunk of stream) content += chunk.choices[0]?.delta?.content ?? '';
      },
      (err) => err instanceof OpenAI.APIError && /incomplete/.test(err.message),
    );
    assert.ok(content.length > 0, 'the content before the cut was delivered');
  });

  test('models.list() lists the aliases and provider/model ids', async () => {
    const ids = [];
    for await (const model of openai.models.list()) ids.push(model.id);
    for (const id of ['triage', 'review', 'default', GEMINI, 'openai/gpt-4o-mini']) assert.ok(ids.includes(id), id);
  });
});

describe('tool calls', () => {
  test('non-streamed: the call and its arguments; tools forwarded intact', async () => {
    const text = unique('Label this issue: the build fails');
    const body = {
      model: 'triage',
      messages: [
        { role: 'system', content: 'You label GitHub issues.' },
        { role: 'user', content: text },
      ],
      tools: [addLabel, closeIssue],
      tool_choice: 'auto',
      parallel_tool_calls: false,
    };
    const { data, response } = await openai.chat.completions.create(body).withResponse();
    assertDecisionHeaders(response.headers);
    const [choice] = data.choices;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.equal(choice.message.tool_calls.length, 1);
    const [call] = choice.message.tool_calls;
    assert.equal(call.type, 'function');
    assert.match(call.id, /^(call_|function-call-)/);
    assert.equal(call.function.name, 'add_label');
    assert.equal(call.function.arguments, argumentsFor(text));

    const upstream = await upstreamRequest(text);
    const forwarded = JSON.parse(upstream.body);
    assert.deepEqual(forwarded.tools, body.tools);
    assert.equal(forwarded.tool_choice, 'auto');
    assert.equal(forwarded.parallel_tool_calls, false);
    expectForwardedIntact(upstream, text, 'triage');

    // The tool's result goes back; the model answers it in text.
    const followUp = await openai.chat.completions.create({
      ...body,
      messages: [
        ...body.messages,
        choice.message,
        { role: 'tool', tool_call_id: call.id, content: 'labelled: bug' },
      ],
    });
    assert.equal(followUp.choices[0].finish_reason, 'stop');
    assert.equal(followUp.choices[0].message.content, answerOf(text));
  });

  test('tool_choice naming a function', async () => {
    const text = unique('Close this as a duplicate');
    const reply = await openai.chat.completions.create({
      model: 'triage',
      messages: [{ role: 'user', content: text }],
      tools: [addLabel, closeIssue],
      tool_choice: { type: 'function', function: { name: 'close_issue' } },
    });
    const [call] = reply.choices[0].message.tool_calls;
    assert.equal(call.function.name, 'close_issue');
    assert.deepEqual(JSON.parse(call.function.arguments), { duplicate_of: 1 });
  });

  test('streamed: deltas reassemble into the full arguments JSON', async () => {
    const text = unique('Label this one too, it crashes on start');
    const stream = await openai.chat.completions.create({
      model: 'triage',
      messages: [{ role: 'user', content: text }],
      tools: [addLabel],
      stream: true,
    });
    const calls = new Map();
    let argumentDeltas = 0;
    let finish = null;
    let usage = null;
    for await (const chunk of stream) {
      for (const delta of chunk.choices[0]?.delta?.tool_calls ?? []) {
        const call = calls.get(delta.index) ?? { id: '', name: '', arguments: '' };
        if (delta.id) call.id = delta.id;
        if (delta.function?.name) call.name += delta.function.name;
        if (delta.function?.arguments) {
          call.arguments += delta.function.arguments;
          argumentDeltas += 1;
        }
        calls.set(delta.index, call);
      }
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.deepEqual([...calls.keys()], [0]);
    const call = calls.get(0);
    assert.match(call.id, /^(call_|function-call-)/);
    assert.equal(call.name, 'add_label');
    assert.ok(argumentDeltas > 1, `the arguments came in pieces (${argumentDeltas})`);
    assert.equal(call.arguments, argumentsFor(text));
    assert.deepEqual(JSON.parse(call.arguments), { label: 'bug', reason: text });
    assert.equal(finish, 'tool_calls');
    assert.equal(usage.completion_tokens, argumentDeltas);
  });

  test('streamed through the .stream() helper: finalChatCompletion() has the whole call', async () => {
    const text = unique('Which label fits a typo in the docs?');
    const stream = openai.chat.completions.stream({
      model: 'triage',
      messages: [{ role: 'user', content: text }],
      tools: [addLabel],
    });
    const done = [];
    stream.on('tool_calls.function.arguments.done', (event) => done.push(event));
    const final = await stream.finalChatCompletion();
    const [call] = final.choices[0].message.tool_calls;
    assert.equal(final.choices[0].finish_reason, 'tool_calls');
    assert.equal(call.function.name, 'add_label');
    assert.equal(call.function.arguments, argumentsFor(text));
    assert.equal(done.length, 1);
    assert.equal(done[0].name, 'add_label');
    assert.equal(done[0].arguments, argumentsFor(text));
  });
});

describe('response_format', () => {
  const schema = {
    type: 'object',
    properties: {
      kind: { type: 'string', enum: ['bug', 'feature', 'question'] },
      summary: { type: 'string' },
      confidence: { type: 'number' },
      labels: { type: 'array', items: { type: 'string' } },
    },
    required: ['kind', 'summary', 'confidence', 'labels'],
    additionalProperties: false,
  };

  test('a JSON schema is forwarded intact and answered in it', async () => {
    const text = unique('Classify: dark mode please');
    const response_format = { type: 'json_schema', json_schema: { name: 'triage', strict: true, schema } };
    const reply = await openai.chat.completions.create({
      model: 'triage',
      messages: [{ role: 'user', content: text }],
      response_format,
    });
    assert.deepEqual(JSON.parse(reply.choices[0].message.content), {
      confidence: 1,
      kind: 'bug',
      labels: [text],
      summary: text,
    });
    const upstream = await upstreamRequest(text);
    assert.deepEqual(JSON.parse(upstream.body).response_format, response_format);
    expectForwardedIntact(upstream, text, 'triage');
  });

  test('chat.completions.parse() with zodResponseFormat', async () => {
    const text = unique('Classify: crash when saving');
    const Triage = z.object({ kind: z.enum(['bug', 'feature']), summary: z.string(), duplicate: z.boolean() });
    const reply = await openai.chat.completions.parse({
      model: 'review',
      messages: [{ role: 'user', content: text }],
      response_format: zodResponseFormat(Triage, 'triage'),
    });
    assert.deepEqual(reply.choices[0].message.parsed, { kind: 'bug', summary: text, duplicate: true });
    const upstream = await upstreamRequest(text);
    const forwarded = JSON.parse(upstream.body).response_format;
    assert.equal(forwarded.type, 'json_schema');
    assert.equal(forwarded.json_schema.name, 'triage');
    assert.deepEqual(forwarded.json_schema.schema.required, ['kind', 'summary', 'duplicate']);
    expectForwardedIntact(upstream, text, 'review');
  });
});

describe('error classes', () => {
  test('AuthenticationError on a wrong token', async () => {
    const stranger = client({ apiKey: 'not-the-agent-token' });
    const text = unique('Who am I?');
    await assert.rejects(
      stranger.chat.completions.create({ model: 'triage', messages: [{ role: 'user', content: text }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.AuthenticationError, err);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_api_key');
        assert.equal(err.type, 'authentication_error');
        assert.equal(err.headers.get('x-gateway-provider'), 'none');
        assert.equal(err.headers.get('x-gateway-model'), 'none');
        assert.equal(err.headers.get('x-gateway-attempts'), '0');
        return true;
      },
    );
    assert.deepEqual(await upstreamRequests(text), [], 'refused before any upstream call');
  });

  test('BadRequestError on a bad body', async () => {
    const bad = [
      { model: 'triage', messages: [] },
      { model: 42, messages: [{ role: 'user', content: 'x' }] },
      { model: 'triage', messages: [{ role: 'user', content: 'x' }], stream: 'yes' },
    ];
    for (const body of bad) {
      await assert.rejects(openai.chat.completions.create(body), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, `${JSON.stringify(body)}: ${err}`);
        assert.equal(err.status, 400);
        assert.equal(err.code, 'invalid_request');
        assert.equal(err.headers.get('x-gateway-attempts'), '0');
        return true;
      });
    }
  });

  test('NotFoundError on an unknown model', async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'gpt-9-ultra', messages: [{ role: 'user', content: 'x' }] }),
      (err) => err instanceof OpenAI.NotFoundError && err.code === 'model_not_found',
    );
  });

  test('RateLimitError once every target is over its rate limit', async () => {
    // The limited Worker allows 1 request per minute to each of Gemini, OpenAI and Anthropic, which
    // no other test calls there: the default chain answers three times, then has nothing left.
    const limited = client({ baseURL: LIMITED_BASE_URL });
    const providers = [];
    for (let i = 0; i < 3; i++) {
      const { response } = await limited.chat.completions
        .create({ model: 'default', messages: [{ role: 'user', content: unique(`n${i}`) }] })
        .withResponse();
      providers.push(response.headers.get('x-gateway-provider'));
    }
    assert.deepEqual(providers, ['google-ai-studio', 'openai', 'anthropic']);
    for (const stream of [false, true]) {
      const text = unique('one too many');
      await assert.rejects(
        limited.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: text }], stream }),
        (err) => {
          assert.ok(err instanceof OpenAI.RateLimitError, err);
          assert.equal(err.status, 429);
          assert.equal(err.code, 'gateway_limits_exhausted');
          assert.match(err.message, /rate limit of 1 requests? per minute/);
          const retryAfter = Number(err.headers.get('retry-after'));
          assert.ok(retryAfter >= 1 && retryAfter <= 61, `retry-after ${retryAfter}`);
          assert.equal(err.headers.get('x-gateway-attempts'), '0');
          assert.equal(err.headers.get('x-gateway-provider'), 'none');
          assert.match(err.headers.get('x-gateway-trace'), /google-ai-studio\/gemini-3\.5-flash-lite=skipped:rate_limited/);
          return true;
        },
      );
      assert.deepEqual(await upstreamRequests(text), [], 'a refused request never reaches AI Gateway');
    }
  });
});
