// Sends one operation to a limiter's Durable Object at once, for src/durable/limiter.rs: the
// call leaves the isolate when `send` returns — before the attempt's upstream call, which comes
// later in the same request — and its answer is not waited for on the request's path (the
// promise goes to `waitUntil`). Resolves to the answer's status, 0 when the call failed; never
// rejects.

export function send(namespace, name, body) {
  try {
    const stub = namespace.get(namespace.idFromName(name));
    return stub.fetch("https://limiter/op", { method: "POST", body }).then(
      (answer) => answer.arrayBuffer().then(() => answer.status, () => answer.status),
      () => 0,
    );
  } catch (_) {
    return Promise.resolve(0);
  }
}
