// CPU profile of a Worker running in `workerd serve -i <addr>`, over the inspector protocol.
// Usage: node bench/profile.mjs <inspector host:port> <seconds> <out.cpuprofile>
// Prints the functions with the most self time, and totals by kind: wasm (our Rust), the
// wasm-bindgen JS glue, runtime builtins, GC. The .cpuprofile opens in Chrome DevTools.
// `python3 bench/run.py --profile "chat 2KB"` runs it while wrk loads the Worker.
import { writeFileSync } from "node:fs";
import { connect, targets } from "./inspector.mjs";

const [address, seconds, out] = process.argv.slice(2);
const { send, close } = await connect((await targets(address))[0]);
await send("Profiler.enable");
await send("Profiler.setSamplingInterval", { interval: 100 });
await send("Profiler.start");
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
const { result } = await send("Profiler.stop");
close();
const profile = result.profile;
writeFileSync(out, JSON.stringify(profile));

// Self time per node, from the sample deltas.
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) || 0) + (profile.timeDeltas[i] || 0));
}
const byFunction = new Map();
const byKind = new Map();
let total = 0;
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) || 0;
  const cf = node.callFrame;
  const name = cf.functionName || "(anonymous)";
  let kind;
  if (name === "(idle)") kind = "idle";
  else if (name === "(garbage collector)") kind = "gc";
  else if (name === "(program)") kind = "runtime (C++)";
  else if (cf.url.startsWith("wasm://")) kind = "wasm";
  else if (cf.url.endsWith("index.js") || cf.url.endsWith(".js")) kind = "js";
  else kind = "builtin";
  const key = `${kind}\t${name}\t${cf.url.split("/").pop()}`;
  byFunction.set(key, (byFunction.get(key) || 0) + us);
  byKind.set(kind, (byKind.get(kind) || 0) + us);
  total += us;
}
const busy = total - (byKind.get("idle") || 0);
const pct = (us) => ((100 * us) / busy).toFixed(1).padStart(5);
console.log(`profile: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (percentages of busy)`);
for (const [kind, us] of [...byKind].sort((a, b) => b[1] - a[1])) {
  if (kind !== "idle") console.log(`  ${pct(us)}%  ${kind}`);
}
console.log("top self time:");
for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  const [kind, name, file] = key.split("\t");
  if (kind === "idle") continue;
  console.log(`  ${pct(us)}%  ${kind.padEnd(13)} ${name.slice(0, 90)} ${file}`);
}
