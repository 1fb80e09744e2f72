// JSON lines to and from the Go tests. Binary values travel as {"$bin": base64}
// so the Go side can tell a Buffer from an object.
export function revive(v) {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === "object") {
    if (typeof v.$bin === "string" && Object.keys(v).length === 1) return Buffer.from(v.$bin, "base64");
    return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, revive(e)]));
  }
  return v;
}

export function describe(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v instanceof ArrayBuffer ? new Uint8Array(v) : v).toString("base64") };
  }
  if (Array.isArray(v)) return v.map(describe);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, e]) => [k, describe(e)]));
  return v;
}

export function say(obj) {
  process.stdout.write(JSON.stringify(describe(obj)) + "\n");
}
