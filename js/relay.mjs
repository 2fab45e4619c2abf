// The stream relay (src/relay/mod.rs): the upstream body is read here, in JavaScript, and each
// chunk handed to the Rust pump synchronously: one call into wasm per chunk, with no promise,
// waker or stream adapter crossing the boundary (the `ByteStream` reader and the response's
// pull stream cost about 250 µs per chunk in `make bench`). What the pump returns is passed on
// untouched.
//
// `step(kind, chunk)` is the pump. Kinds: 0 a chunk, 1 the upstream's end, 2 the upstream broke,
// 3 it stalled (nothing within the idle deadline, or the commit deadline passed), 4 the client
// went away, 5 the client's body is closed (the books may be settled now). It returns
// `undefined` (nothing to send yet), a Uint8Array (send it), or `[bytes or null, cut, drain]`:
// the stream is done — send the last bytes, then close the body, or error it when `cut` (a
// format that cannot carry an error event), and with `drain` read the upstream to its end in
// the background rather than cancel it.

const CHUNK = 0, END = 1, BROKEN = 2, STALL = 3, GONE = 4, CLOSED = 5;

export class Relay {
  constructor(body, step, idleMs) {
    this.reader = body.getReader();
    this.step = step;
    this.idleMs = idleMs;
    // The commit deadline, while opening (epoch ms).
    this.until = Infinity;
    // The bytes of the commit point, sent first.
    this.first = null;
    this.done = false;
    this.stalled = false;
    // A read of the upstream under way, since when (the idle deadline counts only that time:
    // a client that pulls slowly does not stall the upstream).
    this.reading = false;
    this.readSince = 0;
    this.timer = null;
    // For the task that notices a body its client stopped pulling (read from Rust).
    this.pulling = false;
    this.lastPull = Date.now();
  }

  // One timer per idle period, not per chunk: when it fires it checks the read under way.
  arm(ms) {
    this.timer = setTimeout(() => this.check(), Math.max(1, ms));
  }

  check() {
    this.timer = null;
    if (this.done && !this.draining) return;
    const now = Date.now();
    const idleLeft = this.reading ? this.readSince + this.idleMs - now : this.idleMs;
    const left = Math.min(idleLeft, this.until - now);
    if (left > 0) return this.arm(left);
    this.stalled = true;
    // The pending read ends ({done: true}) and the upstream connection is freed.
    this.reader.cancel().catch(() => {});
  }

  // The next upstream event: [kind, chunk].
  async next() {
    this.reading = true;
    this.readSince = Date.now();
    if (this.timer === null) this.arm(Math.min(this.idleMs, this.until - this.readSince));
    let kind = CHUNK, value;
    try {
      const read = await this.reader.read();
      if (read.done) kind = END;
      else value = read.value;
    } catch {
      kind = BROKEN;
    }
    this.reading = false;
    if (this.stalled) return [STALL, undefined];
    return [kind, value];
  }

  // Handles a done answer of the pump: what to send last, and the upstream's end.
  finish(out) {
    this.done = true;
    if (out[2]) {
      this.drain();
    } else {
      this.stop();
      this.reader.cancel().catch(() => {});
    }
    return out;
  }

  stop() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  // Reads the upstream to its end in the background (cancelling it right after the stream's
  // proper end would abort an answer the provider has already finished), within the idle
  // deadline.
  drain() {
    this.draining = true;
    (async () => {
      while (!this.stalled) {
        const [kind] = await this.next();
        if (kind !== CHUNK) break;
      }
      this.draining = false;
      this.stop();
    })();
  }

  // Reads until the commit point (`first`), the stream's end or its failure, by `untilMs`. The
  // outcome is the pump's: the promise only says the reading stopped.
  async open(untilMs) {
    this.until = untilMs;
    for (;;) {
      const [kind, value] = await this.next();
      const out = this.step(kind, value);
      if (out === undefined) continue;
      if (out instanceof Uint8Array) {
        this.first = out;
        this.until = Infinity;
        return;
      }
      this.finish(out);
      return;
    }
  }

  // The client's body: `first`, then the rest as it arrives.
  body() {
    let first = this.first;
    this.first = null;
    return new ReadableStream({
      pull: async (controller) => {
        this.lastPull = Date.now();
        if (first !== null) {
          controller.enqueue(first);
          first = null;
          return;
        }
        this.pulling = true;
        for (;;) {
          const [kind, value] = await this.next();
          if (this.done) return; // the client went away meanwhile
          const out = this.step(kind, value);
          if (out === undefined) continue;
          if (out instanceof Uint8Array) {
            if (out.length === 0) continue;
            this.pulling = false;
            controller.enqueue(out);
            return;
          }
          const [bytes, cut] = this.finish(out);
          this.pulling = false;
          if (bytes !== null && bytes.length > 0) controller.enqueue(bytes);
          if (cut) controller.error(new Error("upstream stream failed"));
          else controller.close();
          this.step(CLOSED, undefined);
          return;
        }
      },
      cancel: () => this.gone(),
    });
  }

  // The client went away (its body was cancelled), or the Rust side gave the body up: the pump
  // hears of it once, and the upstream is cancelled.
  gone() {
    if (this.done) return;
    this.step(GONE, undefined);
    this.retire();
  }

  // No more calls into the pump: the body is given up (or its client went away). A stream
  // that ended keeps draining.
  retire() {
    if (this.done) return;
    this.done = true;
    this.draining = false;
    this.stop();
    this.reader.cancel().catch(() => {});
  }
}
