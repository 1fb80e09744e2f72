// A bounded load run: N socket.io-client 4.x clients over websocket share a
// few group chats and each sends M messages with at most W unacked at a time.
// Prints acked sends per second and ack latency percentiles. It talks only to
// the URL it is given (a local Parley).
//
//   node scripts/js/load.mjs --url http://127.0.0.1:5000 --clients 50 --messages 200 --window 8
import { io } from "socket.io-client";

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
  if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1]]);
  return acc;
}, []));
const url = args.url ?? process.env.PARLEY_URL ?? "http://127.0.0.1:5000";
const clients = Number(args.clients ?? 50);
const perClient = Number(args.messages ?? 200);
const window = Number(args.window ?? 8);
const chatCount = Number(args.chats ?? 5);
// --direct 1: each client talks in a direct chat with one partner, so the
// run measures the send path more than the fan-out.
const direct = args.direct === "1";
if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(url)) {
  console.error(`refusing ${url}: load runs only against a local server`);
  process.exit(2);
}

async function api(path, token, body) {
  const res = await fetch(url + path, {
    method: body ? "POST" : "GET",
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

const run = Math.random().toString(36).slice(2, 8);
const users = [];
for (let i = 0; i < clients; i++) {
  const name = `load_${run}_${i}`;
  users.push(await api("/api/auth/signup", null, { username: name, email: `${name}@example.com`, password: "load-password" }));
}
const chats = [];
const chatOf = [];
if (direct) {
  for (let i = 0; i + 1 < clients; i += 2) {
    const chat = await api("/api/chats", users[i].token, { type: "direct", userId: users[i + 1].user.id });
    chatOf[i] = chatOf[i + 1] = chat.id;
  }
}
for (let c = 0; c < (direct ? 0 : chatCount); c++) {
  const chat = await api("/api/chats", users[0].token, { type: "group", name: `load ${c}`, memberIds: users.slice(1).map((u) => u.user.id) });
  chats.push(chat.id);
}

const sockets = await Promise.all(users.map((u) => new Promise((resolve, reject) => {
  const s = io(url, { auth: { token: u.token }, transports: ["websocket"], reconnection: false });
  s.once("connect", () => resolve(s));
  s.once("connect_error", reject);
})));

let received = 0;
for (const s of sockets) s.on("message:new", () => { received++; });

const latencies = [];
const started = performance.now();
await Promise.all(sockets.map((s, i) => new Promise((resolve, reject) => {
  let sent = 0, acked = 0;
  const pump = () => {
    while (sent < perClient && sent - acked < window) {
      const t0 = performance.now();
      const n = sent++;
      s.emit("message:send", { chatId: direct ? chatOf[i] : chats[(i + n) % chats.length], text: `m ${i}/${n}`, clientMsgId: `${run}-${i}-${n}` }, (ack) => {
        if (!ack?.ok) return reject(new Error(JSON.stringify(ack)));
        latencies.push(performance.now() - t0);
        if (++acked === perClient) resolve(); else pump();
      });
    }
  };
  pump();
})));
const seconds = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))].toFixed(1);
const total = clients * perClient;
console.log(JSON.stringify({
  url, clients, messagesPerClient: perClient, window, chats: direct ? "direct pairs" : chatCount,
  ackedSends: total, seconds: Number(seconds.toFixed(2)), sendsPerSecond: Math.round(total / seconds),
  ackLatencyMs: { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: latencies.at(-1).toFixed(1) },
  messageNewReceived: received,
}));
for (const s of sockets) s.close();
