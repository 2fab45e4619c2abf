// Tool-using agents on Gemini as it really answers (the simulator speaks Gemini's dialect:
// tool calls without `index`, one call per chunk, `finish_reason: "stop"` after streamed calls,
// Gemini 3's thought signatures, required back on the next turn), and a tool loop that fails
// over between providers in the middle, with the agent's own clients: the Node `openai` SDK's
// stream helper and `runTools`, a hand-written loop, and the AI SDK's `generateText`.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, stepCountIs, tool } from 'ai';
import { z } from 'zod';

import {
  AGENT_HEADERS,
  AGENT_TOKEN,
  BASE_URL,
  GEMINI,
  answerOf,
  flushRecords,
  openaiClient,
  queueFault,
  recordingFetch,
  unique,
  upstreamRequests,
} from './_support.mjs';

const openai = openaiClient();

after(flushRecords);

const readFile = {
  type: 'function',
  function: {
    name: 'read_file',
    description: 'Read a file of the repository',
    parameters: {
      type: 'object',
      properties: { path: { type: 'string' } },
      required: ['path'],
      additionalProperties: false,
    },
  },
};
const addLabel = {
  type: 'function',
  function: {
    name: 'add_label',
    description: 'Put one label on the issue',
    parameters: {
      type: 'object',
      properties: { label: { type: 'string', enum: ['bug', 'feature'] } },
      required: ['label'],
      additionalProperties: false,
    },
  },
};

/** Every call well-formed as an OpenAI client needs it: ids non-empty and distinct, JSON arguments. */
function assertWellFormed(calls, names) {
  assert.deepEqual(
    calls.map((c) => c.function.name),
    names,
  );
  const ids = calls.map((c) => c.id);
  assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0), JSON.stringify(ids));
  assert.equal(new Set(ids).size, ids.length, JSON.stringify(ids));
  for (const c of calls) JSON.parse(c.function.arguments);
}

/** The first call of an assistant tool step's signature, as the simulator received it. */
const signatureOf = (message) => message.tool_calls?.[0]?.extra_content?.google?.thought_signature;

describe('tool calls on Gemini', () => {
  test('the stream helper gets two parallel calls, each whole under its own index', async () => {
    const text = unique('Use read_file and add_label on this issue: the build fails');
    const stream = openai.chat.completions.stream({
      model: 'triage',
      messages: [{ role: 'user', content: text }],
      tools: [readFile, addLabel],
    });
    const indexes = [];
    stream.on('tool_calls.function.arguments.done', (event) => indexes.push(event.index));
    const final = await stream.finalChatCompletion();
    const choice = final.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assertWellFormed(choice.message.tool_calls, ['read_file', 'add_label']);
    assert.deepEqual(indexes, [0, 1]);
    // Gemini 3 signed the step: the signature rides on the first call, for the next turn.
    assert.ok(signatureOf(choice.message), JSON.stringify(choice.message));
    const [sent] = await upstreamRequests(text);
    assert.match(JSON.parse(sent.body).model, /^google-ai-studio\/gemini-3/);
  });

  test('runTools drops the signature; the gateway gives it back on the second turn', async () => {
    const text = unique('add_label on this issue: crash on save');
    const labelled = [];
    const runner = openai.chat.completions.runTools({
      model: 'triage',
      messages: [{ role: 'user', content: text }],
      tools: [
        {
          type: 'function',
          function: {
            ...addLabel.function,
            parse: JSON.parse,
            function: async (args) => {
              labelled.push(args.label);
              return 'labelled';
            },
          },
        },
      ],
    });
    const content = await runner.finalContent();
    assert.equal(content, answerOf(text));
    assert.deepEqual(labelled, ['bug']);
    const [first, second] = await upstreamRequests(text);
    assert.ok(first && second, 'two turns went upstream');
    // What runTools sent back has no extra_content; Gemini 3 got its own signature back.
    const replayed = JSON.parse(second.body).messages.find((m) => m.role === 'assistant');
    const signature = signatureOf(replayed);
    assert.ok(signature && signature !== 'skip_thought_signature_validator', JSON.stringify(replayed));
  });

  test('a hand-written loop fails over Gemini → OpenAI → Anthropic and back to Gemini 3', async () => {
    const text = unique('read_file README.md first');
    // A call from an earlier session, with ids neither OpenAI (over 40 characters) nor
    // Anthropic (a dot) accept as they are.
    const earlier = [
      { role: 'user', content: 'What does the changelog say?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'legacy.session.call.0123456789abcdef0123456789abcdef',
            type: 'function',
            function: { name: 'read_file', arguments: '{"path":"CHANGELOG.md"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'legacy.session.call.0123456789abcdef0123456789abcdef', content: 'v1.2.0' },
    ];
    const messages = [...earlier, { role: 'user', content: text }];
    const turn = async (expected, ask) => {
      const { data, response } = await openai.chat.completions
        .create({ model: 'triage', messages, tools: [readFile, addLabel] })
        .withResponse();
      assert.equal(response.headers.get('x-gateway-provider'), expected, response.headers.get('x-gateway-trace'));
      const message = data.choices[0].message;
      messages.push(message);
      if (message.tool_calls) {
        assertWellFormed(message.tool_calls, [message.tool_calls[0].function.name]);
        messages.push({ role: 'tool', tool_call_id: message.tool_calls[0].id, content: 'done' });
      }
      if (ask) messages.push({ role: 'user', content: ask });
      return message;
    };
    // Gemini 3 calls read_file and signs it; the client keeps the message as it came.
    const first = await turn('google-ai-studio', 'now add_label bug');
    assert.ok(signatureOf(first));
    // Gemini fails (both tries): OpenAI takes the history Gemini wrote.
    await queueFault('google-ai-studio', { kind: 'status', status: 503 }, 2);
    await turn('openai', 'and read_file docs/build.md');
    // Gemini and OpenAI fail: Anthropic takes a history written by both.
    await queueFault('google-ai-studio', { kind: 'status', status: 503 }, 2);
    await queueFault('openai', { kind: 'status', status: 503 }, 2);
    await turn('anthropic');
    // Back on Gemini 3, with steps it never signed: the placeholder, its own signature kept.
    const last = await turn('google-ai-studio');
    assert.ok(last.content.startsWith(`Simulated answer from ${GEMINI}`), last.content);

    const sent = (await upstreamRequests(text)).map((r) => ({ model: JSON.parse(r.body).model, body: JSON.parse(r.body) }));
    const to = (prefix) => sent.filter((s) => s.model.startsWith(prefix)).map((s) => s.body);
    for (const body of [...to('openai/'), ...to('anthropic/')]) {
      const ids = body.messages.flatMap((m) => (m.tool_calls ?? []).map((c) => c.id).concat(m.tool_call_id ?? []));
      assert.ok(ids.length >= 2 && ids.every((id) => /^[a-zA-Z0-9_-]{1,40}$/.test(id)), JSON.stringify(ids));
      assert.ok(!JSON.stringify(body).includes('extra_content'), 'extra_content reached a provider that is not Gemini');
    }
    const back = to('google-ai-studio/').at(-1);
    const steps = back.messages.filter((m) => m.role === 'assistant' && m.tool_calls);
    assert.ok(steps.length >= 3, JSON.stringify(steps));
    assert.ok(steps.every((m) => signatureOf(m)), 'every step carries a signature or the placeholder');
    assert.ok(steps.some((m) => signatureOf(m) === 'skip_thought_signature_validator'));
    assert.equal(signatureOf(steps[1]), signatureOf(first), 'its own step keeps the signature it issued');
  });

  test('the AI SDK runs a tool loop of several steps on Gemini 3', async () => {
    const gateway = createOpenAICompatible({
      name: 'agent-gateway',
      baseURL: BASE_URL,
      apiKey: AGENT_TOKEN,
      headers: AGENT_HEADERS,
      fetch: recordingFetch,
    });
    const text = unique('read_file CONTRIBUTING.md');
    const read = [];
    const result = await generateText({
      maxRetries: 0,
      model: gateway('triage'),
      prompt: text,
      tools: {
        read_file: tool({
          description: 'Read a file of the repository',
          inputSchema: z.object({ path: z.string() }),
          execute: async ({ path }) => {
            read.push(path);
            return 'contents';
          },
        }),
      },
      stopWhen: stepCountIs(4),
    });
    assert.equal(read.length, 1);
    assert.equal(result.steps[0].finishReason, 'tool-calls');
    assert.equal(result.text, answerOf(text));
    const [, second] = await upstreamRequests(text);
    const replayed = JSON.parse(second.body).messages.find((m) => m.role === 'assistant');
    assert.ok(signatureOf(replayed), 'the signature went back to Gemini 3');
  });
});
