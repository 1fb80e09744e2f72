// Runs @socket.io/redis-emitter operations against REDIS_URL, then exits.
// Usage: REDIS_URL=redis://... node emit.mjs '<JSON list of operations>'
// An operation: {op: "emit"|"socketsJoin"|"socketsLeave"|"disconnectSockets"|"serverSideEmit",
//   to?: [room], except?: [room], event?, args?: [...], rooms?: [room], close?: bool}
import { Emitter } from "@socket.io/redis-emitter";
import { Redis } from "ioredis";
import { revive, say } from "./wire.mjs";

const redis = new Redis(process.env.REDIS_URL);
const ops = revive(JSON.parse(process.argv[2]));
const emitter = new Emitter(redis);

for (const o of ops) {
  let target = emitter;
  if (o.to?.length) target = target.to(o.to);
  if (o.except?.length) target = target.except(o.except);
  switch (o.op) {
    case "emit": target.emit(o.event, ...o.args); break;
    case "socketsJoin": target.socketsJoin(o.rooms); break;
    case "socketsLeave": target.socketsLeave(o.rooms); break;
    case "disconnectSockets": target.disconnectSockets(o.close); break;
    case "serverSideEmit": emitter.serverSideEmit(...o.args); break;
    default: throw new Error("unknown op " + o.op);
  }
}
// ioredis sends commands in order; QUIT after them means all were published.
await redis.quit();
say({ done: ops.length });
