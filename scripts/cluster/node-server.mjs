// A Node.js Socket.IO server with @socket.io/redis-adapter on REDIS_URL, and one
// socket.io-client connected to it, for the Go interop tests. It prints JSON
// lines (ready, client events, server-side emits, command results) and takes
// commands as JSON lines on stdin. It exits when stdin closes.
// Usage: REDIS_URL=redis://... ROOMS=a,b node node-server.mjs
import { createServer } from "node:http";
import { createInterface } from "node:readline";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { io as connect } from "socket.io-client";
import { Redis } from "ioredis";
import { revive, say } from "./wire.mjs";

const pub = new Redis(process.env.REDIS_URL);
const sub = pub.duplicate();
const httpServer = createServer();
const io = new Server(httpServer, { adapter: createAdapter(pub, sub) });
const rooms = (process.env.ROOMS || "").split(",").filter(Boolean);

io.on("connection", (socket) => {
  socket.join(rooms);
  socket.data = { who: "node" };
});
// serverSideEmit listeners: "hello" only reports, "ask" answers.
io.on("hello", (...args) => say({ serverSideEmit: { event: "hello", args } }));
io.on("ask", (...args) => {
  const cb = args.pop();
  say({ serverSideEmit: { event: "ask", args } });
  cb({ from: "node", got: args[0] });
});

httpServer.listen(0, "127.0.0.1", () => {
  const { port } = httpServer.address();
  const client = connect(`http://127.0.0.1:${port}`, { transports: ["websocket"] });
  client.onAny((event, ...args) => {
    const cb = typeof args[args.length - 1] === "function" ? args.pop() : null;
    say({ client: { event, args } });
    if (cb) cb({ from: "node-client", event });
  });
  client.on("disconnect", (reason) => say({ clientDisconnect: reason }));
  client.on("connect", () => {
    // The adapter subscribes asynchronously. Redis answers a connection's
    // commands in order, so once a PING on the subscriber connection is
    // answered, its subscriptions are live (counting subscribers would not
    // tell: other servers share the channels).
    sub.ping().then(() => say({ ready: { port, sid: client.id, uid: io.of("/").adapter.uid } }));
  });
});

const lines = createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  const c = revive(JSON.parse(line));
  let target = io;
  if (c.to?.length) target = target.to(c.to);
  if (c.except?.length) target = target.except(c.except);
  try {
    switch (c.cmd) {
      case "broadcast":
        target.emit(c.event, ...c.args);
        await pub.ping(); // published before we say so
        say({ sent: c.event });
        break;
      case "broadcastWithAck": {
        const responses = await target.timeout(c.timeout).emitWithAck(c.event, ...c.args);
        say({ acks: responses });
        break;
      }
      case "fetch": {
        const sockets = await target.fetchSockets();
        say({ fetched: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })) });
        break;
      }
      case "allRooms": {
        const all = await io.of("/").adapter.allRooms();
        say({ allRooms: [...all] });
        break;
      }
      case "join":
        target.socketsJoin(c.rooms);
        await pub.ping(); // the request is on Redis before we say so
        say({ joined: c.rooms });
        break;
      case "serverSideEmitWithAck": {
        const answers = await io.serverSideEmitWithAck(...c.args);
        say({ answers });
        break;
      }
      default:
        say({ error: "unknown command " + c.cmd });
    }
  } catch (err) {
    say({ error: String(err) });
  }
});
lines.on("close", async () => {
  io.close();
  pub.disconnect();
  sub.disconnect();
  process.exit(0);
});
