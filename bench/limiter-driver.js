// Drives one provider's limiter, our `ProviderLimiter` Durable Object, bound from the Worker under
// test (`bench/run.py --limiter`): each request here is one unit of the limiter's work, so wrk's
// requests/s is how many of them one limiter object sustains.
//
//   /pair  a reserve and its settle: what every request costs the limiter without leases
//   /sync  a lease report and renewal (one of 100 isolates, in turn): what a busy isolate costs
//          it once per lease period, with leases
//
// The operations are the Worker's own wire format (src/durable/limiter.rs, `Op`), with limits
// the bench cannot reach, so nothing is refused. Amounts are JSON numbers with their exact decimal
// digits, as the Worker writes them (USD).

const PROVIDER = "google-ai-studio";
const POLICY = { requests_per_minute: 1000000000, daily_budget: 1000000 };
const ISOLATES = 100;
let counter = 0;
// Report numbers only grow per lease id; a process-wide counter does that for all of them.
let epoch = Date.now();

async function op(stub, body) {
  const answer = await stub.fetch("https://limiter/op", { method: "POST", body: JSON.stringify(body) });
  const text = await answer.text();
  if (!answer.ok || text.includes('"refused":{')) throw new Error(`limiter answered ${answer.status}: ${text}`);
  return text;
}

export default {
  async fetch(request, env) {
    const stub = env.LIMITER.get(env.LIMITER.idFromName(PROVIDER));
    const path = new URL(request.url).pathname;
    const n = counter++;
    try {
      if (path === "/pair") {
        const id = `bench-${n}`;
        await op(stub, { reserve: { id, amount: 0.001, policy: POLICY, name: PROVIDER } });
        await op(stub, { settle: { id, actual: 0.0005, health: "healthy", name: PROVIDER } });
      } else if (path === "/sync") {
        const today = Math.floor(Date.now() / 86400000);
        const sync = {
          id: `isolate-${n % ISOLATES}`, epoch: epoch++, day: today, admitted: 48, spent: 0.024,
          held: 0.002, healthy: 48, failed: 0, want: 64, per_request: 0.001,
        };
        await op(stub, { sync: { sync, policy: POLICY, name: PROVIDER } });
      } else {
        return new Response("not found", { status: 404 });
      }
    } catch (e) {
      return new Response(String(e), { status: 500 });
    }
    return new Response("ok");
  },
};
