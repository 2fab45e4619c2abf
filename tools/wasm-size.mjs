// The Worker's wasm: how big it ships, and what makes it big. Node only, no dependencies.
//
//   node tools/wasm-size.mjs strip IN OUT      OUT = IN without its `name` section (the function
//                                              names traces and profiles show: kept in IN)
//   node tools/wasm-size.mjs names NAMED N...  the names of functions N (as a stack trace from the
//                                              shipped module shows them: `wasm-function[N]`)
//   node tools/wasm-size.mjs report SHIPPED NAMED [TOP]
//                                              SHIPPED's size, raw and gzipped (as `make size`
//                                              has always printed it); its sections; then, from
//                                              NAMED (the same module with its names), the
//                                              largest functions and the crates they come from
//
// worker-build 0.8.7 always runs wasm-opt with --debuginfo (it keeps the name section, about a
// tenth of the module), so the shipped file is stripped after the build (`make worker`) and the
// named copy kept beside it as build/index_bg.unstripped.wasm.

import fs from "node:fs";
import zlib from "node:zlib";

const SECTION_NAMES = [
  "custom", "type", "import", "function", "table", "memory", "global",
  "export", "start", "element", "code", "data", "datacount", "tag",
];

function readU32(bytes, at) {
  let value = 0, shift = 0, pos = at;
  for (;;) {
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, pos];
    shift += 7;
  }
}

function readName(bytes, at) {
  const [len, pos] = readU32(bytes, at);
  return [Buffer.from(bytes.subarray(pos, pos + len)).toString("utf8"), pos + len];
}

// Every section: id, its custom name if any, where its payload starts and ends, and where the
// whole section (id and length included) starts.
function sections(bytes) {
  if (bytes.readUInt32BE(0) !== 0x0061736d) throw new Error("not a wasm module");
  const out = [];
  let pos = 8;
  while (pos < bytes.length) {
    const start = pos;
    const id = bytes[pos++];
    const [size, payload] = readU32(bytes, pos);
    const end = payload + size;
    const name = id === 0 ? readName(bytes, payload)[0] : SECTION_NAMES[id] ?? `id ${id}`;
    out.push({ id, name, start, payload, end });
    pos = end;
  }
  return out;
}

function strip(input, output) {
  const bytes = fs.readFileSync(input);
  const kept = [bytes.subarray(0, 8)];
  for (const s of sections(bytes)) {
    if (!(s.id === 0 && s.name === "name")) kept.push(bytes.subarray(s.start, s.end));
  }
  fs.writeFileSync(output, Buffer.concat(kept));
}

function functionNames(bytes, all) {
  const names = new Map();
  const section = all.find((s) => s.id === 0 && s.name === "name");
  if (!section) return names;
  let pos = readName(bytes, section.payload)[1];
  while (pos < section.end) {
    const sub = bytes[pos++];
    const [size, body] = readU32(bytes, pos);
    if (sub === 1) {
      let [count, at] = readU32(bytes, body);
      for (let i = 0; i < count; i++) {
        let index, name;
        [index, at] = readU32(bytes, at);
        [name, at] = readName(bytes, at);
        names.set(index, name);
      }
    }
    pos = body + size;
  }
  return names;
}

function importedFunctions(bytes, all) {
  const section = all.find((s) => s.id === 2);
  if (!section) return 0;
  let [count, pos] = readU32(bytes, section.payload);
  let functions = 0;
  for (let i = 0; i < count; i++) {
    pos = readName(bytes, pos)[1];
    pos = readName(bytes, pos)[1];
    const kind = bytes[pos++];
    if (kind === 0) {
      functions++;
      pos = readU32(bytes, pos)[1];
    } else if (kind === 1) { // table: reftype, limits
      pos++;
      const flags = bytes[pos++];
      pos = readU32(bytes, pos)[1];
      if (flags & 1) pos = readU32(bytes, pos)[1];
    } else if (kind === 2) { // memory: limits
      const flags = bytes[pos++];
      pos = readU32(bytes, pos)[1];
      if (flags & 1) pos = readU32(bytes, pos)[1];
    } else if (kind === 3) { // global: valtype, mutability
      pos += 2;
    } else if (kind === 4) { // tag: attribute, type index
      pos++;
      pos = readU32(bytes, pos)[1];
    } else {
      throw new Error(`unknown import kind ${kind}`);
    }
  }
  return functions;
}

// The crate a (demangled) function name comes from: its first path segment, looking through
// `<T as Trait>::f` and `<&mut T>` to the type's crate (the trait's for a primitive type).
const PRIMITIVE = /^(?:[iu](?:8|16|32|64|128|size)|f32|f64|bool|char|str)$/;
function crateOf(name) {
  if (/^__wbg|^__wbindgen/.test(name)) return "wasm-bindgen (glue)";
  const path = /^[<&*\s\[(]*(?:mut\s+|const\s+|dyn\s+)*([A-Za-z_][A-Za-z0-9_]*)(\[[0-9a-f]+\])?(::)?/.exec(name);
  if (!path) return "(other)";
  if (PRIMITIVE.test(path[1])) {
    const trait = / as ([A-Za-z_][A-Za-z0-9_]*)(?:\[[0-9a-f]+\])?::/.exec(name);
    return trait ? trait[1] : "core";
  }
  return path[3] ? path[1] : "(unnamed)";
}

const kb = (n) => (n / 1000).toFixed(1).padStart(7) + " KB";
const gz = (b) => zlib.gzipSync(b, { level: 9 }).length;

// For information: Workers' upload limits are 3 MB (free) and 10 MB (paid), compressed; the
// figure that matters to callers is cold start, which `make bench` measures.
function report(shippedPath, namedPath, top) {
  const shipped = fs.readFileSync(shippedPath);
  const gzipped = gz(shipped);
  console.log(`${shippedPath}: ${shipped.length} bytes, ${gzipped} bytes gzipped`);
  const all = sections(shipped);
  const bySection = new Map();
  for (const s of all) {
    const key = s.id === 0 ? `custom "${s.name}"` : s.name;
    bySection.set(key, (bySection.get(key) ?? 0) + (s.end - s.start));
  }
  console.log("  sections (raw / gzipped alone):");
  for (const s of all.filter((s) => s.end - s.start >= 1000).sort((a, b) => (b.end - b.start) - (a.end - a.start))) {
    const key = s.id === 0 ? `custom "${s.name}"` : s.name;
    console.log(`    ${key.padEnd(22)} ${kb(s.end - s.start)} ${kb(gz(shipped.subarray(s.start, s.end)))}`);
  }

  if (!namedPath || !fs.existsSync(namedPath)) {
    console.log(`  (no ${namedPath ?? "named copy"}: no function names; run make size)`);
    return;
  }
  const named = fs.readFileSync(namedPath);
  const nall = sections(named);
  const names = functionNames(named, nall);
  const imported = importedFunctions(named, nall);
  const code = nall.find((s) => s.id === 10);
  let [count, pos] = readU32(named, code.payload);
  const functions = [];
  for (let i = 0; i < count; i++) {
    const [size, body] = readU32(named, pos);
    const name = names.get(imported + i) ?? `function[${imported + i}]`;
    functions.push({ name, size: body + size - pos });
    pos = body + size;
  }
  const crates = new Map();
  for (const f of functions) {
    const c = crateOf(f.name);
    const entry = crates.get(c) ?? { size: 0, count: 0 };
    entry.size += f.size;
    entry.count += 1;
    crates.set(c, entry);
  }
  const codeSize = code.end - code.start;
  console.log(`  code by crate (raw bytes of function bodies; ${functions.length} functions, ${kb(codeSize).trim()}):`);
  for (const [c, e] of [...crates].sort((a, b) => b[1].size - a[1].size).slice(0, top)) {
    console.log(`    ${c.padEnd(28)} ${kb(e.size)} ${((e.size * 100) / codeSize).toFixed(1).padStart(5)}%  ${e.count} functions`);
  }
  console.log(`  largest functions (raw bytes):`);
  for (const f of functions.sort((a, b) => b.size - a.size).slice(0, top)) {
    const name = f.name.length > 110 ? f.name.slice(0, 107) + "..." : f.name;
    console.log(`    ${kb(f.size)}  ${name}`);
  }
}

function printNames(namedPath, indices) {
  const named = fs.readFileSync(namedPath);
  const names = functionNames(named, sections(named));
  for (const i of indices) console.log(`wasm-function[${i}] ${names.get(Number(i)) ?? "(no name)"}`);
}

const [command, ...rest] = process.argv.slice(2);
if (command === "strip" && rest.length === 2) strip(rest[0], rest[1]);
else if (command === "names" && rest.length >= 2) printNames(rest[0], rest.slice(1));
else if (command === "report" && rest.length >= 1) {
  const [shipped, named, top] = rest;
  report(shipped, named, Number(top ?? 15));
}
else {
  console.error("usage: wasm-size.mjs strip IN OUT | names NAMED N... | report SHIPPED [NAMED [TOP]]");
  process.exit(2);
}
