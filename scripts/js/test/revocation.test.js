// Ending a session revokes its sockets: `session:revoked`, then a server
// disconnect (reason `io server disconnect`, so no reconnection), while the
// user's other session keeps its socket. On socket.io-client 4.x and 2.x.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  VARIANTS,
  V4_WS,
  V2,
  api,
  apiOK,
  signup,
  login,
  directChat,
  connect,
  makeSocket,
  once,
  emitAck,
  record,
  closeAll,
} from './helpers.js';

const V4_POLLING = VARIANTS.find((v) => v.name === 'v4 polling');

/** How the first session is ended. */
const ENDINGS = {
  // The second session ends the first one by id.
  delete: async (first, second) => {
    const list = await apiOK('GET', '/api/auth/sessions', { token: second.token }, [200]);
    assert.ok(Array.isArray(list?.sessions), JSON.stringify(list));
    assert.equal(list.sessions.length, 2);
    const others = list.sessions.filter((s) => s.current === false);
    assert.equal(others.length, 1, JSON.stringify(list));
    const res = await api('DELETE', `/api/auth/sessions/${others[0].id}`, { token: second.token });
    assert.equal(res.status, 204, JSON.stringify(res.body));
  },
  // The first session logs out.
  logout: async (first) => {
    const res = await api('POST', '/api/auth/logout', { token: first.token });
    assert.equal(res.status, 204, JSON.stringify(res.body));
  },
};

const CASES = [
  [V4_WS, 'delete'],
  [V4_WS, 'logout'],
  [V4_POLLING, 'logout'],
  [V2, 'logout'],
  [V2, 'delete'],
];

for (const [variant, ending] of CASES) {
  test(`${variant.name}: ending a session (${ending}) revokes its socket only`, async (t) => {
    const sockets = [];
    t.after(() => closeAll(sockets));
    const [a, b] = await Promise.all([signup('reva'), signup('revb')]);
    const chat = await directChat(a, b);
    const first = b; // signup's session
    const second = await login(b);
    assert.notEqual(second.token, first.token);

    const [s1, s2] = await Promise.all([
      connect(variant, first.token, { sockets }),
      connect(variant, second.token, { sockets }),
    ]);
    const order = [];
    for (const ev of ['session:revoked', 'disconnect', 'connect']) s1.on(ev, () => order.push(ev));
    const reconnects = record(s1.io, 'reconnect_attempt');
    const s2Events = [];
    for (const ev of ['session:revoked', 'disconnect']) s2.on(ev, () => s2Events.push(ev));

    const revoked = once(s1, 'session:revoked', 3000);
    const disconnected = once(s1, 'disconnect', 3000);
    await ENDINGS[ending](first, second);
    const endedAt = Date.now();

    const payload = await revoked;
    assert.deepEqual(payload, {});
    const reason = await disconnected;
    const took = Date.now() - endedAt;
    assert.equal(reason, 'io server disconnect');
    assert.deepEqual(order, ['session:revoked', 'disconnect']);
    assert.ok(took <= 1000, `revoked within one second of the REST answer (took ${took}ms)`);
    assert.equal(s1.connected, false);
    if (variant.version === 4) {
      assert.equal(s1.active, false, 'a server disconnect does not reconnect');
    } else {
      // socket.io-client 2.x: the socket's manager closes and gives up.
      assert.equal(s1.io.skipReconnect, true, 'a server disconnect does not reconnect');
      assert.equal(s1.io.readyState, 'closed');
    }

    // The ended token is refused, over REST and for a new socket.
    const me = await api('GET', '/api/me', { token: first.token });
    assert.equal(me.status, 401);
    assert.equal(me.body?.error?.code, 'unauthorized');
    const again = makeSocket(variant, { token: first.token });
    sockets.push(again);
    const refusal = variant.version === 4 ? once(again, 'connect_error') : once(again, 'error');
    const err = await refusal;
    assert.equal(variant.version === 4 ? err.message : err, 'unauthorized');

    // The other session's socket is still connected and works.
    assert.equal(s2.connected, true);
    const aSock = await connect(variant, a.token, { sockets });
    const aGets = once(aSock, 'message:new');
    const ack = await emitAck(s2, 'message:send', { chatId: chat.id, text: 'still signed in' });
    assert.equal(ack?.ok, true, JSON.stringify(ack));
    assert.deepEqual(await aGets, ack.message);
    assert.equal(s2.connected, true);
    assert.deepEqual(s2Events, []);

    // Nothing brought the revoked socket back meanwhile.
    assert.deepEqual(order, ['session:revoked', 'disconnect']);
    assert.deepEqual(reconnects, []);
  });
}
