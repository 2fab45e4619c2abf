// The floor: the least a Worker proxy can do. It reads the request body, forwards it to the same
// AI Gateway URL with the gateway header, and returns the upstream response, streamed as it comes.
// `make bench` runs it beside the Rust Worker in the same `workerd serve`, against the same
// simulator, and reports ours as a ratio of it.
export default {
  async fetch(request, env) {
    const body = await request.arrayBuffer();
    const upstream = await fetch(env.UPSTREAM_URL, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "cf-aig-authorization": `Bearer ${env.CF_AIG_TOKEN}`,
      },
      body,
    });
    return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
  },
};
