// Shared helpers for the Parley JS suite: REST calls, sign-up, sockets made
// with the real npm socket.io-client (4.x and 2.x), and promise wrappers
// that wait for events with a timeout (never sleeps).
//
// The server under test comes from PARLEY_URL, e.g. http://127.0.0.1:5077.

import { randomBytes } from 'node:crypto';
import { io as ioV4 } from 'socket.io-client';
import ioV2 from 'socket.io-client-v2';

const rawURL = process.env.PARLEY_URL;
if (!rawURL) {
  throw new Error(
    'PARLEY_URL is not set: start Parley and run e.g. `PARLEY_URL=http://127.0.0.1:5077 npm test` in scripts/js',
  );
}
export const BASE = rawURL.replace(/\/+$/, '');

/** Default wait for any one event or ack (PARLEY_WAIT_MS overrides it). */
export const TIMEOUT = Number(process.env.PARLEY_WAIT_MS) || 5000;

// ---------------------------------------------------------------- REST

/**
 * api sends a JSON request and returns {status, headers, body}; body is the
 * parsed JSON, or null for an empty answer (204).
 */
export async function api(method, path, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    h['content-type'] = 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const res = await fetch(BASE + path, { method, headers: h, body: payload });
  const text = await res.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** apiOK is api that fails the test unless the status is one of want. */
export async function apiOK(method, path, opts = {}, want = [200, 201, 204]) {
  const res = await api(method, path, opts);
  if (!want.includes(res.status)) {
    throw new Error(`${method} ${path}: status ${res.status}, want ${want.join('|')}: ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

export function randomSuffix(n = 6) {
  return randomBytes(n).toString('hex');
}

/**
 * signup creates a fresh user and returns {token, expiresAt, user, username,
 * email, password}.
 */
export async function signup(prefix = 'js') {
  const username = `${prefix}_${randomSuffix(6)}`.slice(0, 32);
  const email = `${username}@example.test`;
  const password = `pw-${randomSuffix(8)}`;
  const res = await api('POST', '/api/auth/signup', { body: { username, email, password } });
  if (res.status !== 201) {
    throw new Error(`signup ${username}: status ${res.status}: ${JSON.stringify(res.body)}`);
  }
  return { ...res.body, username, email, password };
}

/** login opens another session for u and returns {token, expiresAt, user}. */
export async function login(u) {
  return apiOK('POST', '/api/auth/login', { body: { login: u.username, password: u.password } }, [200]);
}

/** directChat makes (or finds) the direct chat between a and b. */
export async function directChat(a, b) {
  return apiOK('POST', '/api/chats', { token: a.token, body: { type: 'direct', userId: b.user.id } }, [200, 201]);
}

/** groupChat makes a group owned by owner with the given members. */
export async function groupChat(owner, name, members) {
  return apiOK(
    'POST',
    '/api/chats',
    { token: owner.token, body: { type: 'group', name, memberIds: members.map((m) => m.user.id) } },
    [201],
  );
}

// ---------------------------------------------------------------- sockets

/**
 * The client/transport variants. opts go to io(); upgrade marks a variant
 * that starts on polling and must upgrade to websocket; transport is the
 * transport the engine must be on once connected (and upgraded).
 */
export const VARIANTS = [
  { name: 'v4 websocket', version: 4, opts: { transports: ['websocket'] }, transport: 'websocket' },
  { name: 'v4 polling', version: 4, opts: { transports: ['polling'], upgrade: false }, transport: 'polling' },
  { name: 'v4 polling+upgrade', version: 4, opts: {}, transport: 'websocket', upgrade: true },
  { name: 'v2 polling+upgrade', version: 2, opts: {}, transport: 'websocket', upgrade: true },
  { name: 'v2 websocket', version: 2, opts: { transports: ['websocket'] }, transport: 'websocket' },
];
export const V4_WS = VARIANTS[0];
export const V2 = VARIANTS[3];

/**
 * credentialOptions turns a credential form into io() options.
 * Forms: 'auth' (4.x only), 'query', 'header' (Authorization: Bearer),
 * 'cookie' (the token cookie), 'none'.
 */
export function credentialOptions(form, token) {
  switch (form) {
    case 'auth':
      return { auth: { token } };
    case 'query':
      return { query: { token } };
    case 'header':
      return { extraHeaders: { Authorization: `Bearer ${token}` } };
    case 'cookie':
      return { extraHeaders: { cookie: `token=${token}` } };
    case 'none':
      return {};
    default:
      throw new Error(`unknown credential form ${form}`);
  }
}

/**
 * makeSocket creates a socket (each on its own Manager, so its own
 * Engine.IO connection) without waiting. It records the engine's upgrade:
 * socket.upgraded resolves with the new transport's name.
 */
export function makeSocket(variant = V4_WS, { token, form, extra = {} } = {}) {
  const cred = credentialOptions(form ?? (token ? (variant.version === 2 ? 'query' : 'auth') : 'none'), token);
  const opts = { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 500, ...variant.opts, ...cred, ...extra };
  // 4.x: a request the server never answers must not keep node alive (its
  // XMLHttpRequest cannot be aborted safely; see settlePoll). 2.x has no
  // such option, and its requests abort cleanly.
  if (variant.version === 4) opts.autoUnref = true;
  const socket = variant.version === 2 ? ioV2(BASE, opts) : ioV4(BASE, opts);
  socket.variant = variant;
  // The engine exists as soon as io() returns (autoConnect); listen before
  // anything can happen on it.
  const engine = socket.io.engine;
  socket.upgraded = new Promise((resolve) => {
    engine.once('upgrade', (transport) => resolve(transport?.name ?? engine.transport?.name));
  });
  socket.upgraded.catch(() => {});
  return socket;
}

/**
 * connect creates a socket and resolves with it on 'connect'; it rejects on
 * connect_error (4.x), 'error' (2.x) or a timeout, closing the socket.
 * Pass sockets to have the socket pushed there for the caller's cleanup.
 *
 * With settle, it then waits for one ack round trip (presence:get of
 * nobody) before resolving. The tests do not need it: the contract has the
 * socket in its user, session and chat rooms by the time the client hears
 * 'connect', and the tests hold the server to that (see "a socket gets
 * messages sent right after its connect event").
 */
export async function connect(variant, token, { settle = false, ...opts } = {}) {
  const socket = await connectOnly(variant, token, opts);
  if (settle) await emitAck(socket, 'presence:get', { userIds: [] }, opts.timeoutMs ?? TIMEOUT);
  return socket;
}

function connectOnly(variant, token, { form, extra, sockets, timeoutMs = TIMEOUT } = {}) {
  const socket = makeSocket(variant, { token, form, extra });
  if (sockets) sockets.push(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`${variant.name}: no 'connect' within ${timeoutMs}ms`)), timeoutMs);
    const fail = (err) => {
      cleanup();
      closeAll([socket]);
      reject(err);
    };
    const onConnect = () => {
      cleanup();
      resolve(socket);
    };
    const onError = (err) => {
      const msg = typeof err === 'string' ? err : err?.message;
      fail(new Error(`${variant.name}: connect failed: ${msg} ${JSON.stringify(err)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
      socket.off('error', onError);
    };
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
    if (variant.version === 2) socket.on('error', onError);
  });
}

/**
 * once resolves with the first argument of the next `event` on emitter,
 * rejecting after timeoutMs. With a predicate, only a matching payload counts.
 */
export function once(emitter, event, timeoutMs = TIMEOUT, predicate = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler);
      reject(new Error(`timed out after ${timeoutMs}ms waiting for '${event}'`));
    }, timeoutMs);
    const handler = (...args) => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(args[0]);
    };
    emitter.on(event, handler);
  });
}

/**
 * emitAck emits with a callback ack (works on 4.x and 2.x) and resolves with
 * the ack's first argument. With no payload argument (undefined), the event
 * is emitted with only the ack.
 */
export function emitAck(socket, event, payload, timeoutMs = TIMEOUT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs}ms waiting for the ack of '${event}'`)),
      timeoutMs,
    );
    const ack = (res) => {
      clearTimeout(timer);
      resolve(res);
    };
    if (payload === undefined) socket.emit(event, ack);
    else socket.emit(event, payload, ack);
  });
}

/** record keeps every payload of event on socket, from now on. */
export function record(socket, event) {
  const seen = [];
  socket.on(event, (p) => seen.push(p));
  return seen;
}

/**
 * pendingPoll is the socket's in-flight long-poll request, or null. It reads
 * engine.io-client internals (pollXhr, and _xhr in 6.x / xhr in 3.x), which
 * the exact versions in package.json pin.
 */
export function pendingPoll(socket) {
  const req = socket.io?.engine?.transport?.pollXhr;
  const xhr = req && (req._xhr ?? req.xhr);
  return xhr ? req : null;
}

/**
 * settlePoll waits (up to ms) for the socket's in-flight long-poll, if any,
 * to be answered. A closing polling client sends a close packet and leaves
 * its last GET to the server to answer; if the server never does, the
 * request is aborted here so that node can exit, and settlePoll resolves
 * false.
 */
export function settlePoll(socket, ms = 2000) {
  const req = pendingPoll(socket);
  if (!req) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (answered) => {
      clearTimeout(timer);
      req.off('success', onAnswer);
      req.off('error', onAnswer);
      resolve(answered);
    };
    const onAnswer = () => done(true);
    const timer = setTimeout(() => {
      // 2.x (xmlhttprequest-ssl 1.6): abort the request. 4.x: its
      // xmlhttprequest-ssl 2.1.2 throws from an async error handler after
      // abort() (it reads request.reusedSocket after nulling request), so
      // only detach it; the socket was made with autoUnref, so the
      // dangling request does not keep node alive.
      if (req.xhr) {
        try {
          req.xhr.abort();
        } catch {
          // already gone
        }
      }
      req.abort();
      done(false);
    }, ms);
    req.on('success', onAnswer);
    req.on('error', onAnswer);
  });
}

/**
 * closeAll closes every socket in the list (for t.after / after) and waits
 * until none has a request in flight, so that node exits.
 */
export async function closeAll(sockets) {
  const list = sockets.splice(0);
  for (const s of list) {
    try {
      s.close();
    } catch {
      // already gone
    }
  }
  await Promise.all(list.map((s) => settlePoll(s)));
}

// ---------------------------------------------------------------- assertions

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** isTime tells whether v is an RFC 3339 time string. */
export function isTime(v) {
  return typeof v === 'string' && RFC3339.test(v) && !Number.isNaN(Date.parse(v));
}

const MESSAGE_KEYS = ['attachments', 'chatId', 'clientMsgId', 'createdAt', 'id', 'senderId', 'seq', 'text'];

/**
 * checkMessage asserts that m is a complete message object (every field
 * present, right types) and matches want's fields.
 */
export function checkMessage(assert, m, want = {}) {
  assert.equal(typeof m, 'object', `message is an object: ${JSON.stringify(m)}`);
  assert.notEqual(m, null);
  for (const k of MESSAGE_KEYS) assert.ok(k in m, `message field ${k} present in ${JSON.stringify(m)}`);
  assert.equal(typeof m.id, 'string');
  assert.match(m.id, /^[0-9a-f]{24}$/);
  assert.equal(typeof m.chatId, 'string');
  assert.ok(Number.isInteger(m.seq) && m.seq >= 1, `seq is a positive integer: ${m.seq}`);
  assert.equal(typeof m.senderId, 'string');
  assert.ok(m.text === null || typeof m.text === 'string');
  assert.ok(Array.isArray(m.attachments), 'attachments is an array');
  assert.ok(m.clientMsgId === null || typeof m.clientMsgId === 'string');
  assert.ok(isTime(m.createdAt), `createdAt is RFC 3339: ${m.createdAt}`);
  for (const [k, v] of Object.entries(want)) assert.deepEqual(m[k], v, `message.${k}`);
}

/** checkAckError asserts an ack is {ok:false, error:{code, message}} with that code. */
export function checkAckError(assert, ack, code) {
  assert.equal(typeof ack, 'object', `ack is an object: ${JSON.stringify(ack)}`);
  assert.equal(ack?.ok, false, `ack.ok is false: ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error, 'object');
  assert.equal(ack.error.code, code, `error code in ${JSON.stringify(ack)}`);
  assert.equal(typeof ack.error.message, 'string');
  assert.ok(ack.error.message.length > 0, 'error message is not empty');
}
