// The size of every WebAssembly memory, and the JS heap, of each Worker isolate of a `workerd
// serve -i <addr>`, over the inspector protocol (Runtime.queryObjects finds the memories).
// Usage: node bench/wasm-memory.mjs <inspector host:port>  → one JSON line per isolate.
import { connect, targets } from "./inspector.mjs";

const [address] = process.argv.slice(2);
for (const target of await targets(address)) {
  const { send, events, close } = await connect(target);
  // workerd's inspector evaluates only in a context it has named (no default one).
  let context = null;
  let named;
  const contextNamed = new Promise((resolve) => (named = resolve));
  events((msg) => {
    if (msg.method === "Runtime.executionContextCreated" && context === null) {
      context = msg.params.context.id;
      named();
    }
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
  close();
}
