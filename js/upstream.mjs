// One call to AI Gateway (or the Cloudflare API) for src/aig/fetch.rs: the fetch, its first-byte
// deadline and the body's read, in JavaScript, so that the Rust side awaits one promise and
// gets one answer, where it awaited three through wasm-bindgen's executor (the fetch, the
// deadline's timer and the `arrayBuffer()` read, each a turn of its queue and a crossing) and
// read each header with a call of its own.
//
// `call(url, method, headers, body, hasBody, firstByteMs, read, errorLimit, idleMs, deadlineMs)`
// never rejects. `headers` is "name\nvalue\n…" (the Rust side refuses names and values with a line
// break, as `Headers` would). `read`: STREAM hands back the body's stream unread, WHOLE reads the
// whole body, a number >= 0 reads at most that many bytes. An error status (not 2xx) reads at
// most `errorLimit` bytes whatever `read` says. Every read is bounded in time: at most `idleMs`,
// and never past `deadlineMs` (epoch ms); a bounded read that runs out of time keeps what it
// has. It resolves to a plain object:
//   failure: 0 none, 1 no response within firstByteMs (the fetch is aborted), 2 the connection
//            failed (`message` is the runtime's), 3 the whole body did not arrive in time
//            (`waited` ms), 4 the body broke off (`message`)
//   status, logId, cacheStatus, contentType, retryAfter (strings or null), dlp (a cf-aig-dlp
//   header was there), bytes (a Uint8Array, or null), stream (a ReadableStream, or null).

const STREAM = -1, WHOLE = -2;
const NONE = 0, TIMEOUT = 1, CONNECTION = 2, BODY_TIMEOUT = 3, BODY_FAILED = 4;

export function call(url, method, headers, body, hasBody, firstByteMs, read, errorLimit, idleMs, deadlineMs) {
  const h = new Headers();
  if (hasBody) h.set("content-type", "application/json");
  if (headers.length > 0) {
    const parts = headers.split("\n");
    for (let i = 0; i + 1 < parts.length; i += 2) {
      try {
        h.set(parts[i], parts[i + 1]);
      } catch (_) {
        // A value `Headers` refuses (a character outside Latin-1, say): named, never shown (it
        // may be a secret), and never thrown into wasm.
        return Promise.resolve(failed(CONNECTION, `invalid header ${parts[i]}`));
      }
    }
  }
  // The body is a view of wasm memory: copied now, before anything can move it.
  const init = { method, headers: h, body: hasBody ? body.slice() : undefined };
  const controller = new AbortController();
  init.signal = controller.signal;

  return new Promise((resolve) => {
    let settled = false;
    // One timer for both deadlines, the first byte's and then the body's (whole or bounded): armed
    // once, no later than either can fall (the body's is at most `idleMs` after the headers),
    // and when it fires before the deadline of the phase it is in, it is armed again for the
    // rest. A request answered in time costs one setTimeout and one clearTimeout.
    const firstByteAt = Date.now() + Math.max(1, firstByteMs);
    let bodyUntil = Infinity;
    let answer = null;
    let reader = null;
    let timer = null;
    let timerAt = 0;
    const arm = (at) => {
      timerAt = at;
      timer = setTimeout(check, Math.max(1, at - Date.now()));
    };
    const finish = (result) => {
      if (settled) return;
      settled = true;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      resolve(result);
    };
    const check = () => {
      timer = null;
      if (settled) return;
      const due = answer === null ? firstByteAt : bodyUntil;
      if (Date.now() < due) return arm(due);
      // A bounded read's pending read ends ({done: true}) and it finishes with what it has;
      // a whole one has failed.
      if (reader !== null) return void reader.cancel().catch(() => {});
      controller.abort();
      if (answer === null) return finish(failed(TIMEOUT, null));
      answer.failure = BODY_TIMEOUT;
      finish(answer);
    };
    arm(Math.min(firstByteAt, Date.now() + Math.max(1, idleMs)));

    let sent;
    try {
      sent = fetch(url, init);
    } catch (e) {
      sent = Promise.reject(e);
    }
    sent.then(
      (response) => {
        if (settled) {
          // Answered just after its deadline: nobody reads this body.
          if (response.body) response.body.cancel().catch(() => {});
          return;
        }
        const rh = response.headers;
        const headers = failed(NONE, null);
        headers.status = response.status;
        headers.logId = rh.get("cf-aig-log-id");
        headers.cacheStatus = rh.get("cf-aig-cache-status");
        headers.contentType = rh.get("content-type");
        headers.retryAfter = rh.get("retry-after");
        headers.dlp = rh.has("cf-aig-dlp");
        const now = Date.now();
        const within = Math.max(1, Math.min(idleMs, deadlineMs - now));
        const ok = response.status >= 200 && response.status < 300;
        const limit = ok ? read : errorLimit;
        if (limit === STREAM) {
          headers.stream = response.body;
          return finish(headers);
        }
        // The body's deadline, under the same timer: kept unless it would fire after it.
        headers.waited = within;
        bodyUntil = now + within;
        answer = headers;
        if (timer === null || timerAt > bodyUntil) {
          if (timer !== null) clearTimeout(timer);
          arm(bodyUntil);
        }
        if (limit === WHOLE) {
          response.arrayBuffer().then(
            (buffer) => {
              headers.bytes = new Uint8Array(buffer);
              finish(headers);
            },
            (e) => {
              headers.failure = BODY_FAILED;
              headers.message = describe(e);
              finish(headers);
            },
          );
          return;
        }
        if (!response.body) {
          headers.bytes = new Uint8Array(0);
          return finish(headers);
        }
        reader = response.body.getReader();
        readUpTo(reader, limit).then((bytes) => {
          headers.bytes = bytes;
          finish(headers);
        });
      },
      (e) => finish(failed(CONNECTION, describe(e))),
    );
  });
}

function failed(failure, message) {
  return {
    failure, message, status: 0, logId: null, cacheStatus: null, contentType: null, retryAfter: null,
    dlp: false, bytes: null, stream: null, waited: 0,
  };
}

function describe(e) {
  if (e && typeof e.message === "string") return e.message;
  return String(e);
}

// At most `limit` bytes of a body (never rejects): an error body is shown in part, never held
// whole. One that stalls is ended by the call's timer, which cancels the reader.
async function readUpTo(reader, limit) {
  const chunks = [];
  let length = 0;
  try {
    while (length < limit) {
      const next = await reader.read();
      if (next.done) break;
      const room = limit - length;
      const chunk = next.value.byteLength > room ? next.value.subarray(0, room) : next.value;
      chunks.push(chunk);
      length += chunk.byteLength;
    }
  } catch (_) {
    // A body that breaks off: what came before it is what there is.
  } finally {
    reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
