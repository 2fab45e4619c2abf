// Drives one provider's limiter, our `ProviderLimiter` Durable Object, bound from the Worker under
// test (`bench/run.py --limiter`): each request here is one unit of the limiter's work, so wrk's
// requests/s is how many of them one limiter object sustains.
//
//   /pair    a reserve and its settle: what every request costs the limiter without a lease
//   /sync    a lease report and renewal (one of 100 isolates, in turn): what a busy isolate
//            costs it once per lease period
//   /leased  what a request admitted under a lease costs it: its admission report, and an
//            eighth of a batch of settles (one isolate of 100 in turn, each keeping its lease
//            renewed)
//
// The operations are the Worker's own wire format (crates/core/src/account/limits/ops.rs, `Op`),
// with limits the bench cannot reach, so nothing is refused. Amounts are JSON numbers with their
// exact decimal digits, as the Worker writes them (USD).

const PROVIDER = "google-ai-studio";
const POLICY = { requests_per_minute: 1000000000, daily_budget: 1000000 };
const ISOLATES = 100;
// Settles go in batches of this many (a busy isolate's, while one batch is in flight).
const BATCH = 8;
let counter = 0;
// Report numbers only grow per lease id; a process-wide counter does that for all of them.
let epoch = Date.now();
// Per isolate: its last ticket's number, and when its lease was last renewed.
const tickets = new Array(ISOLATES).fill(0);
const renewed = new Array(ISOLATES).fill(0);

async function op(stub, body) {
  const answer = await stub.fetch("https://limiter/op", { method: "POST", body: JSON.stringify(body) });
  const text = await answer.text();
  if (!answer.ok || text.includes('"refused":{')) throw new Error(`limiter answered ${answer.status}: ${text}`);
  return text;
}

function sync(isolate, today) {
  const next = tickets[isolate] + 1;
  const open = [];
  for (let n = Math.max(1, next - 4); n < next; n++) open.push([n, 0.001]);
  return {
    sync: {
      sync: {
        id: `isolate-${isolate}`, epoch: epoch++, day: today, admitted: 48, next, open, settled: [],
        healthy: 48, failed: 0, want: 64, per_request: 0.001,
      },
      policy: POLICY,
      name: PROVIDER,
    },
  };
}

export default {
  async fetch(request, env) {
    const stub = env.LIMITER.get(env.LIMITER.idFromName(PROVIDER));
    const path = new URL(request.url).pathname;
    const n = counter++;
    const today = Math.floor(Date.now() / 86400000);
    try {
      if (path === "/pair") {
        const id = `bench-${n}`;
        await op(stub, { reserve: { id, amount: 0.001, policy: POLICY, name: PROVIDER } });
        await op(stub, { settle: { id, actual: 0.0005, health: "healthy", name: PROVIDER } });
      } else if (path === "/sync") {
        await op(stub, sync(n % ISOLATES, today));
      } else if (path === "/leased") {
        const isolate = n % ISOLATES;
        if (Date.now() - renewed[isolate] > 5000) {
          renewed[isolate] = Date.now();
          await op(stub, sync(isolate, today));
        }
        const id = `isolate-${isolate}`;
        const ticket = ++tickets[isolate];
        await op(stub, { admitted: { ticket: { id, day: today, n: ticket, amount: 0.001 } } });
        if (ticket % BATCH === 0) {
          const settles = [];
          for (let t = ticket - BATCH + 1; t <= ticket; t++) settles.push({ n: t, amount: 0.001, actual: 0.0005 });
          await op(stub, { settle_tickets: { settles: { id, day: today, settles }, name: PROVIDER } });
        }
      } else {
        return new Response("not found", { status: 404 });
      }
    } catch (e) {
      return new Response(String(e), { status: 500 });
    }
    return new Response("ok");
  },
};
