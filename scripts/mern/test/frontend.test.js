// The mern-chat-app frontend's flows against Parley, replayed request for
// request and event for event (see app.js), asserting what its users see.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { App, getSender, suffix } from './app.js';

const apps = [];
after(() => apps.forEach((a) => a.close()));

async function newUser(name) {
  const app = new App();
  apps.push(app);
  const s = suffix();
  const email = `${name.toLowerCase().replace(/ /g, '.')}.${s}@example.com`;
  await app.signup(`${name} ${s}`, email, 'password123');
  app.email = email;
  return app;
}

test('signup, login, search, direct chat, typing, send and receive', async () => {
  const alice = await newUser('Alice');
  const bob = await newUser('Bob');
  for (const u of [alice.user, bob.user]) {
    assert.deepEqual(Object.keys(u).sort(), ['_id', 'email', 'isAdmin', 'name', 'pic', 'token']);
    assert.equal(u.isAdmin, false);
    assert.match(u.pic, /^https?:\/\//);
  }

  // Login with the new account: the same user, a fresh token.
  const again = new App();
  const loggedIn = await again.login(bob.email, 'password123');
  assert.equal(loggedIn._id, bob.user._id);
  await assert.rejects(again.login(bob.email, 'wrong-password'), (err) => {
    assert.equal(err.response.status, 401);
    assert.equal(typeof err.response.data.message, 'string');
    return true;
  });

  await alice.connect();
  await bob.connect();

  // Search by part of the name, any case; the result list the drawer shows.
  const found = await alice.search(bob.user.name.slice(0, 5).toUpperCase());
  assert.deepEqual(found.map((u) => u._id), [bob.user._id]);
  assert.equal(found[0].password, undefined);

  // Open the direct chat from the search result.
  const chat = await alice.accessChat(bob.user._id);
  assert.equal(chat.isGroupChat, false);
  assert.equal(getSender(alice.user, chat.users), bob.user.name);
  assert.deepEqual(alice.messages, []);
  assert.equal((await alice.accessChat(bob.user._id))._id, chat._id, 'the same chat again');

  // Bob sees it in My Chats and opens it.
  const bobChats = await bob.fetchChats();
  assert.equal(bobChats[0]._id, chat._id);
  assert.equal(getSender(bob.user, bobChats[0].users), alice.user.name);
  await bob.select(bobChats[0]);
  await bob.settled();

  // Typing shows the animation on the other side, and stops.
  alice.type();
  await bob.until(() => bob.isTyping, 'typing');
  alice.stopTyping();
  await bob.until(() => !bob.isTyping, 'stop typing');

  // Send: the sender appends its own POST answer; the other gets it once.
  const m = await alice.send('Hello Bob');
  assert.equal(m.content, 'Hello Bob');
  assert.equal(m.sender._id, alice.user._id);
  assert.equal(m.chat._id, chat._id);
  await bob.until(() => bob.messages.length === 1, "Alice's message in the open chat");
  assert.equal(bob.messages[0]._id, m._id);
  assert.equal(bob.messages[0].sender.name, alice.user.name);
  assert.equal(bob.notification.length, 0);

  const reply = await bob.send('Hi Alice');
  await alice.until(() => alice.messages.some((x) => x._id === reply._id), "Bob's reply");
  // Exactly once each, though every send also emitted 'new message'.
  assert.equal(bob.received.filter((x) => x._id === m._id).length, 1);
  assert.equal(alice.received.filter((x) => x._id === reply._id).length, 1);
  assert.equal(alice.received.filter((x) => x._id === m._id).length, 0, 'never back to the sender');

  // Reloaded history, oldest first, and the chat list's latest message.
  const history = await bob.select(bobChats[0]);
  assert.deepEqual(history.map((x) => x.content), ['Hello Bob', 'Hi Alice']);
  const [first] = await alice.fetchChats();
  assert.equal(first.latestMessage.content, 'Hi Alice');
  assert.equal(first.latestMessage.sender.name, bob.user.name);
});

test('groups: create, rename, add, remove, leave; notification for a chat not open', async () => {
  const owner = await newUser('Olga');
  const [m1, m2, m3] = await Promise.all([newUser('Mia'), newUser('Max'), newUser('Moe')]);
  await Promise.all([owner, m1, m2, m3].map((a) => a.connect()));

  // The form refuses a group of fewer than two others.
  await assert.rejects(owner.createGroup('tiny', [m1.user]), (err) => err.response.status === 400);

  const group = await owner.createGroup('Weekend', [m1.user, m2.user]);
  assert.equal(group.isGroupChat, true);
  assert.equal(group.chatName, 'Weekend');
  assert.equal(group.groupAdmin._id, owner.user._id);
  assert.equal(group.users.length, 3);

  await owner.select(group);
  assert.equal((await owner.rename('Long weekend')).chatName, 'Long weekend');
  const added = await owner.addUser(m3.user);
  assert.deepEqual(added.users.map((u) => u._id).sort(), [owner, m1, m2, m3].map((a) => a.user._id).sort());
  const removed = await owner.removeUser(m2.user);
  assert.equal(removed.users.length, 3);

  // Only the admin may change the group (Parley's rule; the app checks too).
  m1.selectedChat = added;
  await assert.rejects(m1.rename('mine now'), (err) => err.response.status === 403);

  // Mia has a direct chat with Olga open; a group message is a notification.
  const direct = await m1.accessChat(owner.user._id);
  assert.equal(m1.selectedChat._id, direct._id);
  await owner.select(await owner.fetchChats().then((cs) => cs.find((c) => c._id === group._id)));
  const sent = await owner.send('Who is in?');
  await m1.until(() => m1.notification.length === 1, 'a notification');
  const notif = m1.notification[0];
  assert.equal(notif._id, sent._id);
  assert.equal(notif.chat._id, group._id);
  assert.equal(notif.chat.isGroupChat, true);
  assert.equal(`New Message in ${notif.chat.chatName}`, 'New Message in Long weekend');
  assert.equal(m1.messages.length, 0, 'not in the open chat');
  // Moe, just added, gets it too; Max, removed, does not (barrier: Moe's copy).
  await m3.until(() => m3.notification.some((n) => n._id === sent._id), "Moe's notification");

  // Leaving: removing yourself.
  m3.selectedChat = removed;
  await m3.removeUser(m3.user);
  assert.equal(m3.selectedChat, null);

  // A direct message from someone whose chat is not open names the sender.
  const dm = await owner.accessChat(m2.user._id);
  await owner.send('Sorry Max');
  await m2.until(() => m2.notification.some((n) => n.chat._id === dm._id), "Max's notification");
  const n2 = m2.notification.find((n) => n.chat._id === dm._id);
  assert.equal(`New Message from ${getSender(m2.user, n2.chat.users)}`, `New Message from ${owner.user.name}`);
  assert.equal(m2.received.filter((x) => x.content === 'Who is in?').length, 0, 'a removed member gets nothing');
});
