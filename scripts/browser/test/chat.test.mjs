// End-to-end: two people use Parley's web client in real Chromium.
//
// The steps build on each other (one story, run in order). Elements are
// found by role and accessible name only, so passing tests also show that
// the controls are named for assistive technology. Nothing waits for a
// fixed time: every step waits for an element, a state or an event.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, RUN, WAIT, launch, openPage, png, re, screenshot } from '../lib/harness.mjs';

const PASSWORD = 'correct horse battery';
const aName = `alice_${RUN}`;
const bName = `bob_${RUN}`;
const groupName = `Book club ${RUN}`;
const XSS = '<img src=x onerror=alert(1)>';

/** Accessible handles on one page of the client. */
function ui(page) {
  const chats = page.getByRole('navigation', { name: 'Chats' });
  const messages = page.getByRole('list', { name: 'Messages' });
  return {
    page,
    conn: page.getByRole('status', { name: 'Connection' }),
    chats,
    // A chat item's name starts with the chat's title (then presence,
    // unread count, time and preview).
    chatItem: (title) => chats.getByRole('button', { name: new RegExp(`^${re(title)}`) }),
    messages,
    message: (text) => messages.getByRole('listitem').filter({ hasText: text }),
    composer: page.getByRole('textbox', { name: 'Message', exact: true }),
    send: page.getByRole('button', { name: 'Send', exact: true }),
    attach: page.getByLabel('Attach file', { exact: true }),
    heading: (title) => page.getByRole('heading', { name: title, exact: true }),
    logout: page.getByRole('button', { name: 'Log out', exact: true }),
    login: page.getByRole('button', { name: 'Log in', exact: true }),
    tick: (text, state) => messages.getByRole('listitem').filter({ hasText: text }).getByRole('img', { name: state, exact: true }),
  };
}

async function connState(u, text) {
  await u.conn.filter({ hasText: new RegExp(`^${re(text)}$`) }).waitFor();
}

async function signUp(u, username) {
  await u.page.getByLabel('Username', { exact: true }).fill(username);
  await u.page.getByLabel('Email', { exact: true }).fill(`${username}@example.com`);
  await u.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await u.page.getByRole('button', { name: 'Sign up', exact: true }).click();
  await u.logout.waitFor();
  await connState(u, 'Online');
}

async function logIn(u, username) {
  await u.page.getByLabel('Username', { exact: true }).fill(username);
  await u.page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await u.login.click();
  await u.logout.waitFor();
  await connState(u, 'Online');
}

async function sendText(u, text) {
  await u.composer.fill(text);
  await u.send.click();
  await u.message(text).waitFor();
}

/** Waits until an <img> has loaded and decoded real pixels. */
async function imageLoaded(locator) {
  await locator.waitFor();
  const handle = await locator.elementHandle();
  await locator.page().waitForFunction((img) => img.complete && img.naturalWidth > 0, handle, { timeout: WAIT });
  return handle.evaluate((img) => ({ w: img.naturalWidth, h: img.naturalHeight, src: img.getAttribute('src') }));
}

describe('Parley web client', { concurrency: false }, () => {
  // The story's steps depend on each other: after one fails, the rest of
  // the story is skipped instead of timing out one by one.
  let broken = null;
  const step = (name, fn) =>
    test(name, async (t) => {
      if (broken) {
        t.skip(`an earlier step failed: ${broken}`);
        return;
      }
      try {
        await fn(t);
      } catch (err) {
        broken = name;
        // What each page showed when it went wrong.
        await Promise.all(sessions.map((s, i) => screenshot(s.page, `failed-${i}`).catch(() => {})));
        throw err;
      }
    });

  let browser;
  const sessions = [];
  let A; // alice, wide screen
  let B; // bob, wide screen

  async function person() {
    const s = await openPage(browser);
    sessions.push(s);
    return { ...s, u: ui(s.page) };
  }

  before(async () => {
    const health = await fetch(`${BASE}/healthz`).catch((err) => {
      throw new Error(`Parley is not reachable at PARLEY_URL=${BASE}: ${err.cause?.code || err.message}`);
    });
    assert.equal(health.status, 200, `${BASE}/healthz answered ${health.status}`);
    browser = await launch();
    A = await person();
    B = await person();
  });

  after(async () => {
    await browser?.close();
  });

  step('two people sign up', async () => {
    await A.page.goto('/');
    await A.page.getByRole('heading', { name: 'Parley' }).waitFor();
    await screenshot(A.page, '01-login');
    await signUp(A.u, aName);
    await B.page.goto('/');
    await signUp(B.u, bName);
    await screenshot(A.page, '02-empty-chat-list');
    // Only the token is kept in localStorage.
    const stored = await A.page.evaluate(() => Object.keys(localStorage));
    assert.ok(stored.includes('parley.token'), `localStorage keys: ${stored}`);
    assert.ok(!stored.some((k) => /password|secret/i.test(k)), `localStorage keys: ${stored}`);
  });

  step('a direct chat starts from a user search', async () => {
    await A.page.getByRole('searchbox', { name: 'Search users' }).fill(bName);
    const results = A.page.getByRole('region', { name: 'Search results' });
    await results.getByRole('button', { name: bName }).click();
    await A.u.heading(bName).waitFor();
    await A.u.composer.waitFor();
    // Bob is told of the new chat live (chat:new) and sees Alice online.
    await B.u.chatItem(aName).waitFor();
    await B.u.chatItem(aName).filter({ hasText: ', online' }).waitFor();
  });

  step('messages go both ways, live', async () => {
    await sendText(A.u, 'Hello Bob!');
    await A.u.tick('Hello Bob!', 'sent').waitFor();

    await B.u.chatItem(aName).click();
    await B.u.heading(aName).waitFor();
    const item = B.u.message('Hello Bob!');
    await item.waitFor();
    // The list item reads the sender as well as the text.
    const spoken = await item.textContent();
    assert.match(spoken, new RegExp(`${re(aName)}.*Hello Bob!`));

    // Enter sends from the composer.
    await B.u.composer.fill('Hi Alice, good to see you');
    await B.u.composer.press('Enter');
    await A.u.message('Hi Alice, good to see you').waitFor();
    assert.match(await A.u.message('Hi Alice, good to see you').textContent(), new RegExp(re(bName)));
    assert.equal(await B.u.composer.inputValue(), '');
  });

  step('typing shows "X is typing…" and goes away', async () => {
    await A.u.composer.pressSequentially('I am wri', { delay: 20 });
    const typing = B.page.getByText(`${aName} is typing…`, { exact: true });
    await typing.waitFor();
    await A.u.composer.fill('');
    await typing.waitFor({ state: 'hidden' });
  });

  step('a group is created with "New group" and its messages show unread badges', async () => {
    await A.page.getByRole('button', { name: 'New group', exact: true }).click();
    const dialog = A.page.getByRole('dialog', { name: 'Create a group' });
    await dialog.getByLabel('Group name', { exact: true }).fill(groupName);
    await dialog.getByRole('searchbox', { name: 'Find members' }).fill(bName);
    await dialog.getByRole('checkbox', { name: bName }).check();
    await dialog.getByRole('button', { name: `Remove ${bName}` }).waitFor();
    await screenshot(A.page, '03-new-group');
    await dialog.getByRole('button', { name: 'Create group', exact: true }).click();
    await dialog.waitFor({ state: 'hidden' });
    await A.u.heading(groupName).waitFor();

    await B.u.chatItem(groupName).waitFor();
    await sendText(A.u, 'Welcome to the club');
    await B.u.chatItem(groupName).filter({ hasText: '1 unread' }).waitFor();

    await B.u.chatItem(groupName).click();
    await B.u.heading(groupName).waitFor();
    const item = B.u.message('Welcome to the club');
    await item.waitFor();
    // In a group the sender's name is shown, not only spoken.
    await item.getByText(aName, { exact: true }).waitFor({ state: 'visible' });
    await B.u.chatItem(groupName).filter({ hasText: 'unread' }).waitFor({ state: 'detached' });
  });

  step('read ticks: ✓ sent while unread, ✓✓ once the other side reads it', async () => {
    await A.u.chatItem(bName).click();
    await A.u.heading(bName).waitFor();
    // Bob is in the group chat, so this stays unread for now.
    await sendText(A.u, 'Are you there?');
    await A.u.tick('Are you there?', 'sent').waitFor();
    await B.u.chatItem(aName).filter({ hasText: '1 unread' }).waitFor();
    await B.u.chatItem(aName).click();
    await B.u.message('Are you there?').waitFor();
    await A.u.tick('Are you there?', 'read').waitFor();
    await A.u.tick('Hello Bob!', 'read').waitFor();
  });

  step('an image is shown inline and another file as a download link', async () => {
    await A.u.attach.setInputFiles({ name: 'pixel.png', mimeType: 'image/png', buffer: png(48, 32) });
    await A.page.getByRole('button', { name: 'Remove pixel.png' }).waitFor();
    await A.u.composer.fill('A picture for you');
    await A.u.send.click();
    const img = B.u.message('A picture for you').getByRole('img', { name: 'pixel.png' });
    const seen = await imageLoaded(img);
    assert.deepEqual([seen.w, seen.h], [48, 32]);
    assert.match(seen.src, /^\/api\/files\/[0-9a-f]+$/);
    await imageLoaded(A.u.message('A picture for you').getByRole('img', { name: 'pixel.png' }));

    // A file alone, without text; the name is rendered as text.
    await A.u.attach.setInputFiles({ name: 'notes <script>.txt', mimeType: 'text/plain', buffer: Buffer.from('some notes\n') });
    await A.u.send.click();
    const link = B.u.messages.getByRole('link', { name: /notes <script>\.txt/ });
    await link.waitFor();
    assert.match(await link.getAttribute('href'), /^\/api\/files\/[0-9a-f]+$/);
    await A.u.tick('notes <script>.txt', 'read').waitFor();
    await screenshot(B.page, '04-conversation');
  });

  step('markup in a message is shown as text and never runs', async () => {
    await A.u.composer.fill(XSS);
    await A.u.composer.press('Enter');
    const shown = B.u.messages.getByText(XSS, { exact: true });
    await shown.waitFor();
    assert.equal(await B.u.messages.locator('img[src="x"]').count(), 0);
    assert.equal(await A.u.messages.locator('img[src="x"]').count(), 0);
    assert.deepEqual(B.trouble.dialogs, []);
    assert.deepEqual(A.trouble.dialogs, []);
  });

  step('an avatar can be set', async () => {
    await A.page.getByLabel('Change avatar', { exact: true }).setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png(64, 64) });
    const mine = A.page.locator('#me-avatar img');
    const seen = await imageLoaded(mine);
    assert.match(seen.src, /^\/api\/users\/[0-9a-f]+\/avatar\?v=/);
  });

  step('after a reload the history is still there', async () => {
    await B.page.reload();
    await connState(B.u, 'Online');
    // The open chat is in the address (#chat/<id>), so it comes back.
    await B.u.heading(aName).waitFor();
    for (const text of ['Hello Bob!', 'Hi Alice, good to see you', 'Are you there?', XSS]) {
      await B.u.message(text).waitFor();
    }
    await imageLoaded(B.u.message('A picture for you').getByRole('img', { name: 'pixel.png' }));
    // Alice's new avatar, in Bob's chat list.
    await imageLoaded(B.u.chatItem(aName).locator('img'));
    // The read marks Bob's client learned survive the reload.
    await B.u.tick('Hi Alice, good to see you', 'read').waitFor();
  });

  step('older messages load when scrolling up', async () => {
    // 120 messages into the group over REST, while Bob is elsewhere.
    const total = 120;
    await A.page.evaluate(
      async ({ groupName, total }) => {
        const headers = { Authorization: `Bearer ${localStorage.getItem('parley.token')}`, 'Content-Type': 'application/json' };
        const { chats } = await (await fetch('/api/chats', { headers })).json();
        const group = chats.find((c) => c.name === groupName);
        for (let i = 1; i <= total; i++) {
          const res = await fetch(`/api/chats/${group.id}/messages`, { method: 'POST', headers, body: JSON.stringify({ text: `Filler ${i}`, clientMsgId: `filler-${i}` }) });
          if (res.status !== 201) throw new Error(`send ${i}: ${res.status}`);
        }
      },
      { groupName, total },
    );
    await B.u.chatItem(groupName).filter({ hasText: `${total} unread` }).waitFor();
    await B.u.chatItem(groupName).click();
    await B.u.message(`Filler ${total}`).waitFor();
    const oldest = B.u.message('Welcome to the club');
    const items = B.u.messages.getByRole('listitem');
    assert.equal(await oldest.count(), 0, 'the whole history came at once');
    // Scroll up with the wheel until the beginning shows; each scroll must
    // bring a page of older messages.
    await B.u.message(`Filler ${total}`).hover();
    for (let i = 0; i < 10 && (await oldest.count()) === 0; i++) {
      const shown = await items.count();
      await B.page.mouse.wheel(0, -20000);
      await B.page.waitForFunction((n) => document.querySelectorAll('#messages > li').length > n, shown);
    }
    await oldest.waitFor();
    await B.page.getByText('This is the beginning of the conversation.').waitFor();
    // Every message exactly once, in order.
    const texts = await items.evaluateAll((lis) => lis.map((li) => li.querySelector('.text')?.textContent));
    const fillers = texts.filter((t) => t && t.startsWith('Filler '));
    assert.deepEqual(fillers, Array.from({ length: total }, (_, i) => `Filler ${i + 1}`));
    await B.u.chatItem(aName).click();
    await B.u.heading(aName).waitFor();
  });

  step('offline and back: what was sent meanwhile arrives, and what was typed offline is sent', async () => {
    await B.context.setOffline(true);
    await connState(B.u, 'Offline');
    await sendText(A.u, 'Sent while you were offline (1)');
    await sendText(A.u, 'Sent while you were offline (2)');
    await B.u.composer.fill('Written offline');
    await B.u.composer.press('Enter');
    await B.u.tick('Written offline', 'sending').waitFor();

    await B.context.setOffline(false);
    await connState(B.u, 'Online');
    await B.u.message('Sent while you were offline (1)').waitFor();
    await B.u.message('Sent while you were offline (2)').waitFor();
    await A.u.message('Written offline').waitFor();
    await B.u.tick('Written offline', 'read').waitFor();
    // Exactly once, though it was re-sent after the reconnect.
    assert.equal(await A.u.message('Written offline').count(), 1);
    assert.equal(await B.u.message('Written offline').count(), 1);
  });

  step('keyboard alone: log out, log in, pick a chat, send', async () => {
    await B.u.logout.click();
    await B.u.login.waitFor();
    await B.page.getByText('You have logged out.').waitFor();
    assert.equal(await B.page.evaluate(() => localStorage.getItem('parley.token')), null);
    // Bob's last socket is gone: Alice sees him offline.
    await A.u.chatItem(bName).filter({ hasText: ', offline' }).waitFor();

    const kb = B.page.keyboard;
    await B.page.getByLabel('Username', { exact: true }).focus();
    await kb.type(bName);
    await kb.press('Tab'); // Email: not needed to log in
    await kb.press('Tab');
    await kb.type(PASSWORD);
    await kb.press('Enter'); // the form's first button: Log in
    await connState(B.u, 'Online');
    await A.u.chatItem(bName).filter({ hasText: ', online' }).waitFor();

    // Tab through the page to Alice's chat; chat items are buttons.
    const target = B.u.chatItem(aName);
    await target.waitFor();
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await kb.press('Tab');
      reached = await target.evaluate((el) => el === document.activeElement);
    }
    assert.ok(reached, 'Tab never reached the chat item');
    await kb.press('Enter');
    await B.u.heading(aName).waitFor();
    // Opening a chat from the keyboard puts the focus in the composer.
    await B.page.waitForFunction(() => document.activeElement && document.activeElement.getAttribute('aria-label') === 'Message');
    await kb.type('Typed without a mouse');
    await kb.press('Enter');
    await A.u.message('Typed without a mouse').waitFor();
  });

  let phone;
  step('on a phone-sized screen the list and the conversation take turns', async () => {
    phone = await openPage(browser, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    sessions.push(phone);
    const P = ui(phone.page);
    await phone.page.goto('/');
    await screenshot(phone.page, '05-phone-login');
    await logIn(P, aName);
    await P.chatItem(bName).waitFor();
    assert.equal(await P.messages.isVisible(), false);
    await screenshot(phone.page, '06-phone-chat-list');

    await P.chatItem(bName).click();
    await P.message('Typed without a mouse').waitFor();
    assert.equal(await P.chatItem(bName).isVisible(), false, 'the list should be hidden while a chat is open');
    await screenshot(phone.page, '07-phone-conversation');
    await sendText(P, 'Sent from my phone');
    await B.u.message('Sent from my phone').waitFor();

    await phone.page.getByRole('button', { name: 'Back to chats' }).click();
    await P.chatItem(bName).waitFor({ state: 'visible' });
    assert.equal(await P.messages.isVisible(), false);
  });

  step('ending a session elsewhere sends that browser back to the login screen', async () => {
    // From Alice's desktop: end her other sessions (the phone's).
    const ended = await A.page.evaluate(async () => {
      const headers = { Authorization: `Bearer ${localStorage.getItem('parley.token')}` };
      const { sessions } = await (await fetch('/api/auth/sessions', { headers })).json();
      let n = 0;
      for (const s of sessions) {
        if (s.current) continue;
        const res = await fetch(`/api/auth/sessions/${s.id}`, { method: 'DELETE', headers });
        if (res.status === 204) n += 1;
      }
      return n;
    });
    assert.ok(ended >= 1, 'no other session to end');
    const P = ui(phone.page);
    await P.login.waitFor();
    await phone.page.getByText('This session was ended. Please log in again.').waitFor();
    // The desktop session is untouched.
    await connState(A.u, 'Online');
  });

  step('a page that loads /socket.io/socket.io.js from Parley connects with a token', async () => {
    const token = await A.page.evaluate(() => localStorage.getItem('parley.token'));
    const chatId = await A.page.evaluate(() => decodeURIComponent(location.hash.replace(/^#chat\//, '')));
    const probe = await openPage(browser);
    sessions.push(probe);
    for (const bundle of ['/socket.io/socket.io.js', '/socket.io/socket.io.min.js']) {
      // A plain same-origin page without the app: only the bundle.
      await probe.page.goto('/healthz');
      await probe.page.addScriptTag({ url: bundle });
      const got = await probe.page.evaluate(
        async ({ token, chatId, wait }) => {
          const connect = (opts) =>
            new Promise((resolve, reject) => {
              const s = io({ ...opts, forceNew: true, reconnection: false });
              const timer = setTimeout(() => reject(new Error('no connect in time')), wait);
              s.on('connect', () => {
                clearTimeout(timer);
                resolve(s);
              });
              s.on('connect_error', (e) => {
                clearTimeout(timer);
                s.close();
                reject(new Error(e.message));
              });
            });
          const out = { api: typeof io === 'function' && typeof io.Manager === 'function' && typeof io.Socket === 'function' };
          for (const transports of [['polling'], ['websocket'], ['polling', 'websocket']]) {
            const s = await connect({ auth: { token }, transports });
            const res = await s.timeout(wait).emitWithAck('chat:history', { chatId, limit: 5 });
            out[transports.join('+')] = { ok: res.ok, messages: res.messages.length };
            s.close();
          }
          out.refused = await connect({ auth: { token: 'not-a-token' } }).then(
            (s) => (s.close(), 'connected'),
            (e) => e.message,
          );
          return out;
        },
        { token, chatId, wait: WAIT },
      );
      assert.equal(got.api, true, `${bundle} defines io, io.Manager and io.Socket`);
      for (const t of ['polling', 'websocket', 'polling+websocket']) {
        assert.deepEqual(got[t], { ok: true, messages: 5 }, `${bundle} over ${t}`);
      }
      assert.equal(got.refused, 'unauthorized', bundle);
    }
  });

  test('the bundle is served with its type, an ETag and caching', async () => {
    for (const [path, type] of [
      ['/socket.io/socket.io.js', 'application/javascript; charset=utf-8'],
      ['/socket.io/socket.io.min.js', 'application/javascript; charset=utf-8'],
      ['/socket.io/socket.io.js.map', 'application/json'],
      ['/socket.io/socket.io.min.js.map', 'application/json'],
    ]) {
      const res = await fetch(BASE + path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), type, path);
      assert.match(res.headers.get('cache-control') || '', /public, max-age=\d+/, path);
      const etag = res.headers.get('etag');
      assert.ok(etag, `${path} has no ETag`);
      await res.arrayBuffer();
      const again = await fetch(BASE + path, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, path);
    }
    const page = await fetch(`${BASE}/`);
    assert.match(page.headers.get('content-security-policy') || '', /script-src 'self'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
  });

  test('no dialog opened and no script error happened on any page', () => {
    for (const s of sessions) {
      assert.deepEqual(s.trouble.dialogs, []);
      assert.deepEqual(s.trouble.errors, []);
      assert.deepEqual(s.trouble.csp, []);
    }
  });
});
