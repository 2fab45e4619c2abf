// One inspector connection of a `workerd serve -i <addr>` target, for bench/profile.mjs and
// bench/wasm-memory.mjs: `send(method, params)` resolves with the protocol's answer, and
// `events` calls a listener for each event.
import WebSocket from "ws";

export async function targets(address) {
  return (await fetch(`http://${address}/json/list`)).json();
}

export async function connect(target) {
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let nextId = 1;
  const pending = new Map();
  const listeners = [];
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    } else if (msg.method) {
      for (const listener of listeners) listener(msg);
    }
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve) => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    events: (listener) => listeners.push(listener),
    close: () => ws.close(),
  };
}
