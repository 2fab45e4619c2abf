// The size of every WebAssembly memory, and the JS heap, of each Worker isolate of a `workerd
// serve -i <addr>`, over the inspector protocol (Runtime.queryObjects finds the memories).
// Usage: node bench/wasm-memory.mjs <inspector host:port>  → one JSON line per isolate.
import WebSocket from "ws";

const [address] = process.argv.slice(2);
const list = await (await fetch(`http://${address}/json/list`)).json();
for (const target of list) {
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  let nextId = 1;
  const pending = new Map();
  // workerd's inspector evaluates only in a context it has named (no default one).
  let context = null;
  let named;
  const contextNamed = new Promise((resolve) => (named = resolve));
  ws.on("message", (data) => {
    const msg = JSON.parse(data);
    if (msg.method === "Runtime.executionContextCreated" && context === null) {
      context = msg.params.context.id;
      named();
    }
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send("Runtime.enable");
  await Promise.race([contextNamed, new Promise((r) => setTimeout(r, 2000))]);
  const heap = (await send("Runtime.getHeapUsage")).result ?? {};
  const proto = (await send("Runtime.evaluate", { expression: "WebAssembly.Memory.prototype", contextId: context })).result?.result;
  let memories = [];
  if (proto?.objectId) {
    const found = (await send("Runtime.queryObjects", { prototypeObjectId: proto.objectId })).result?.objects;
    if (found?.objectId) {
      const sizes = await send("Runtime.callFunctionOn", {
        objectId: found.objectId,
        functionDeclaration: "function () { return this.map((m) => m.buffer.byteLength); }",
        returnByValue: true,
      });
      memories = sizes.result?.result?.value ?? [];
    }
  }
  console.log(JSON.stringify({ worker: target.title, js_heap_used: heap.usedSize, js_heap_total: heap.totalSize, wasm_memories: memories }));
  ws.close();
}
