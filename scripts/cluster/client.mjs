// A socket.io-client 4.x connected to URL (query from QUERY, e.g. "room=user:1";
// TRANSPORT "websocket" (default) or "polling"; LOCAL_ADDRESS, a source address
// for a load balancer's stickiness), printing what it receives as JSON lines,
// for the Go interop tests. Exits when stdin closes.
import { Agent } from "node:http";
import { io } from "socket.io-client";
import { say } from "./wire.mjs";

const query = Object.fromEntries(new URLSearchParams(process.env.QUERY || ""));
const opts = { transports: [process.env.TRANSPORT || "websocket"], query, reconnection: false };
if (process.env.LOCAL_ADDRESS) {
  opts.agent = new Agent({ localAddress: process.env.LOCAL_ADDRESS });
  opts.localAddress = process.env.LOCAL_ADDRESS;
}
const socket = io(process.env.URL, opts);
socket.on("connect", () => say({ ready: { sid: socket.id } }));
socket.on("connect_error", (err) => say({ connectError: err.message }));
socket.on("disconnect", (reason) => say({ clientDisconnect: reason }));
socket.onAny((event, ...args) => say({ client: { event, args } }));
process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  socket.close();
  process.exit(0);
});
