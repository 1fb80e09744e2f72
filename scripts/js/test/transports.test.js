// Every client/transport variant (socket.io-client 4.x over websocket,
// polling, polling then upgrade; socket.io-client 2.x over polling then
// upgrade, and websocket): each credential form, a refused handshake, and
// sending and receiving messages.

import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  VARIANTS,
  TIMEOUT,
  signup,
  directChat,
  connect,
  makeSocket,
  once,
  emitAck,
  record,
  closeAll,
  settlePoll,
  pendingPoll,
  checkMessage,
  randomSuffix,
} from './helpers.js';

/** withTimeout rejects if p does not settle within ms. */
function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** checkTransport asserts the socket ended up on the variant's transport. */
async function checkTransport(socket, variant) {
  if (variant.upgrade) {
    const started = Date.now();
    const name = await withTimeout(socket.upgraded, 2 * TIMEOUT, `${variant.name}: the engine's 'upgrade'`).catch((err) => {
      // Say where the upgrade stands: a long-poll the server never answers
      // holds the client's pause of polling, and so the upgrade.
      const e = socket.io.engine;
      err.message += ` (after ${Date.now() - started}ms: transport ${e.transport?.name}, upgrading ${e.upgrading}, long-poll in flight ${pendingPoll(socket) !== null})`;
      throw err;
    });
    assert.equal(name, 'websocket', 'upgraded to websocket');
  }
  assert.equal(socket.io.engine.transport.name, variant.transport, 'engine transport');
}

// The credential forms each client can send: 2.x cannot send `auth`; its
// Node build does send extraHeaders, so the header and cookie are checked
// there too.
const FORMS = {
  4: ['auth', 'query', 'header', 'cookie'],
  2: ['query', 'header', 'cookie'],
};

// The variants run side by side (each has its own users and chat); the
// tests within one variant run in order.
describe('clients and transports', { concurrency: true }, () => {
  for (const variant of VARIANTS) {
    describe(variant.name, { concurrency: 1 }, () => {
      let a;
      let b;
      let chat;

      before(async () => {
        [a, b] = await Promise.all([signup('tra'), signup('trb')]);
        chat = await directChat(a, b);
      });

      for (const form of FORMS[variant.version]) {
        test(`connects with the token in ${form}`, async (t) => {
          const sockets = [];
          t.after(() => closeAll(sockets));
          const s = await connect(variant, a.token, { form, sockets });
          assert.equal(s.connected, true);
          await checkTransport(s, variant);
          // The socket is authenticated as a: what it sends is a's.
          const text = `hello via ${form} ${randomSuffix(3)}`;
          const ack = await emitAck(s, 'message:send', { chatId: chat.id, text });
          assert.equal(ack?.ok, true, JSON.stringify(ack));
          checkMessage(assert, ack.message, { chatId: chat.id, senderId: a.user.id, text });
        });
      }

      test('lets a handshake without credentials wait for a MERN setup, and drops it when none comes', async (t) => {
        // The MERN app connects without credentials and sends setup next;
        // a socket that never does is dropped after MERN_SETUP_TIMEOUT.
        const s = makeSocket(variant, { form: 'none' });
        t.after(() => closeAll([s]));
        const disconnected = once(s, 'disconnect');
        await once(s, 'connect');
        assert.equal(await disconnected, 'io server disconnect');
      });

      const refusals = [
        ['a malformed token', () => ({ token: 'not-a-jwt', form: variant.version === 2 ? 'query' : 'auth' })],
        [
          'a forged token',
          () => {
            // A token of the right shape whose signature is wrong.
            const [h, p] = a.token.split('.');
            return { token: `${h}.${p}.${Buffer.from('forged').toString('base64url')}`, form: 'query' };
          },
        ],
        ['a bad bearer header', () => ({ token: 'garbage', form: 'header' })],
      ];
      for (const [what, opts] of refusals) {
        test(`refuses a handshake with ${what}`, async (t) => {
          const { token, form } = opts();
          const s = makeSocket(variant, { token, form });
          t.after(() => closeAll([s]));
          const connected = record(s, 'connect');
          if (variant.version === 4) {
            // 4.x: the middleware error is connect_error with the message,
            // and the client gives up (no automatic reconnection).
            const err = await once(s, 'connect_error');
            assert.ok(err instanceof Error);
            assert.equal(err.message, 'unauthorized');
            assert.equal(s.active, false, 'the client does not retry a refused handshake');
          } else {
            // 2.x: a namespace middleware error reaches the client as an
            // ERROR packet, which socket.io-client 2.x emits as 'error' with
            // the message as a plain string (what a Node socket.io server
            // sends to an Engine.IO 3 client too).
            const err = await once(s, 'error');
            assert.equal(err, 'unauthorized');
          }
          assert.equal(s.connected, false);
          assert.deepEqual(connected, []);
        });
      }

      test('a socket gets messages sent right after its connect event', async (t) => {
        // The contract: on connect the socket is in its chats' rooms. So a
        // message sent as soon as the client sees 'connect' must reach it.
        const sockets = [];
        t.after(() => closeAll(sockets));
        const sa = await connect(variant, a.token, { sockets });
        const missed = [];
        for (let i = 0; i < 6; i++) {
          const sb = await connect(variant, b.token, { sockets, settle: false });
          const bSeen = record(sb, 'message:new');
          const ack = await emitAck(sa, 'message:send', { chatId: chat.id, text: `right after connect ${i}` });
          assert.equal(ack?.ok, true, JSON.stringify(ack));
          // b's own message comes after a's on the chat's stream: once b's
          // ack is in, a's message:new would have arrived before it.
          const own = await emitAck(sb, 'message:send', { chatId: chat.id, text: `b ${i}` });
          assert.equal(own?.ok, true, JSON.stringify(own));
          if (!bSeen.some((m) => m?.id === ack.message.id)) {
            // Is it late rather than lost? A round trip settles it.
            await emitAck(sb, 'presence:get', { userIds: [] });
            missed.push(bSeen.some((m) => m?.id === ack.message.id) ? `#${i} late` : `#${i} lost`);
          }
          sockets.splice(sockets.indexOf(sb), 1);
          await closeAll([sb]);
        }
        assert.deepEqual(missed, [], 'messages sent right after the recipient connected were missed');
      });

      if (variant.opts.transports?.[0] !== 'websocket') {
        test('a closing polling client gets its last long-poll answered', async (t) => {
          // A polling client that closes sends a close packet while its next
          // long-poll GET is on its way or waiting; the server must answer
          // that GET (Engine.IO answers it with a noop, or 400 for a gone
          // session). A GET left hanging keeps the client (and the server's
          // handler) waiting for ever: node would never exit. Refused
          // handshakes close right after a poll, which makes the race likely.
          const sockets = [];
          t.after(() => closeAll(sockets));
          const rounds = variant.name === 'v4 polling' ? 80 : 30;
          const hung = [];
          for (let i = 0; i < rounds; i++) {
            const s = makeSocket(variant, { token: 'not-a-jwt', form: variant.version === 2 ? 'query' : 'auth' });
            sockets.push(s);
            const refused = variant.version === 4 ? once(s, 'connect_error') : once(s, 'error');
            await refused;
            s.close();
            if (!(await settlePoll(s))) hung.push(`#${i}`);
            sockets.pop();
          }
          for (let i = 0; i < 5; i++) {
            const s = await connect(variant, a.token, { sockets });
            s.close();
            if (!(await settlePoll(s))) hung.push(`connected #${i}`);
            sockets.pop();
          }
          assert.deepEqual(hung, [], 'long-poll GETs left unanswered (for 2s) after the client closed');
        });
      }

      test('message:send is acked and reaches the other member, not the sender', async (t) => {
        const sockets = [];
        t.after(() => closeAll(sockets));
        const [sa, sb] = await Promise.all([
          connect(variant, a.token, { sockets }),
          connect(variant, b.token, { sockets }),
        ]);
        await Promise.all([checkTransport(sa, variant), checkTransport(sb, variant)]);
        const aSeen = record(sa, 'message:new');
        const bSeen = record(sb, 'message:new');

        const clientMsgId = `c-${randomSuffix(6)}`;
        const text = `from a on ${variant.name} ✓`;
        const bGets = once(sb, 'message:new', TIMEOUT, (m) => m?.clientMsgId === clientMsgId);
        const ack = await emitAck(sa, 'message:send', { chatId: chat.id, text, clientMsgId });
        assert.equal(ack?.ok, true, JSON.stringify(ack));
        checkMessage(assert, ack.message, {
          chatId: chat.id,
          senderId: a.user.id,
          text,
          attachments: [],
          clientMsgId,
        });
        const got = await bGets;
        assert.deepEqual(got, ack.message, 'message:new is the acked message');

        // b answers; once that reaches a, a's own message would have too.
        const aGets = once(sa, 'message:new', TIMEOUT, (m) => m?.text === 'reply');
        const ack2 = await emitAck(sb, 'message:send', { chatId: chat.id, text: 'reply' });
        assert.equal(ack2?.ok, true, JSON.stringify(ack2));
        checkMessage(assert, ack2.message, { chatId: chat.id, senderId: b.user.id, text: 'reply', clientMsgId: null });
        assert.equal(ack2.message.seq, ack.message.seq + 1, 'seq has no gaps');
        assert.deepEqual(await aGets, ack2.message);

        assert.deepEqual(aSeen, [ack2.message], "the sender's socket gets only the other member's message");
        assert.deepEqual(bSeen, [ack.message], "the sender's socket gets only the other member's message");
      });
    });
  }
});
