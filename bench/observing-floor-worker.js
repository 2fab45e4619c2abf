// The observing floor: the least a gateway can do that must see what it relays. Unlike
// floor-worker.js, which hands the upstream's body to its Response untouched (its chunks never
// reach JavaScript), it reads every answer: a whole one to its end, parsed for its usage and
// sent back with a few headers and one log line; a stream chunk by chunk through a pull stream,
// as any Worker that holds a stream to its commit point, reads its usage or ends a broken one
// with an error event must. `python3 bench/run.py --observing-floor` runs it beside the floor
// and ours: what is left between it and ours is what our own code costs.
export default {
  async fetch(request, env) {
    const text = await request.text();
    const chat = JSON.parse(text);
    const agent = request.headers.get("x-agent-name");
    const upstream = await fetch(env.UPSTREAM_URL, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "cf-aig-authorization": `Bearer ${env.CF_AIG_TOKEN}`,
        "cf-aig-metadata": JSON.stringify({ agent }),
      },
      body: text,
    });
    const headers = new Headers({ "content-type": upstream.headers.get("content-type") ?? "application/json" });
    headers.set("x-gateway-model", chat.model);
    const logId = upstream.headers.get("cf-aig-log-id");
    if (logId) headers.set("cf-aig-log-id", logId);
    if (!chat.stream) {
      const answer = await upstream.arrayBuffer();
      const usage = JSON.parse(new TextDecoder().decode(answer)).usage ?? {};
      headers.set("x-gateway-tokens", String(usage.total_tokens));
      console.log(JSON.stringify({ event: "chat_completion", status: upstream.status, agent, tokens: usage.total_tokens }));
      return new Response(answer, { status: upstream.status, headers });
    }
    const reader = upstream.body.getReader();
    const body = new ReadableStream({
      async pull(controller) {
        const read = await reader.read();
        if (read.done) {
          console.log(JSON.stringify({ event: "chat_completion", status: upstream.status, agent }));
          controller.close();
        } else {
          controller.enqueue(read.value);
        }
      },
      cancel() {
        return reader.cancel();
      },
    });
    return new Response(body, { status: upstream.status, headers });
  },
};
