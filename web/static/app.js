// Parley web client: plain ES module, no build step.
//
// Rules this file keeps:
// - Data is rendered only through textContent / createElement (see el()).
//   Nothing from the server or a user ever goes through innerHTML, so a
//   message, a name or a file name can never become markup.
// - The only thing kept in localStorage is the session token (plus
//   non-secret read marks of other members, see readMarks below).
// - The server is the source of truth; the client catches up after every
//   (re)connect with chat:history {after: lastSeq} and resends unacked
//   messages with their original clientMsgId (the server dedupes them).

/* global io */

const TOKEN_KEY = 'parley.token';
const MARKS_KEY = 'parley.readMarks';
const NOTICE_KEY = 'parley.notice';
const PAGE = 50;
const ACK_TIMEOUT = 10000;
const TYPING_IDLE = 2500; // stop "typing" after this long without a keystroke
const TYPING_REFRESH = 3000; // re-announce while typing, so a lost stop heals
const TYPING_EXPIRE = 6000; // forget someone's typing if they go silent
const RASTER_IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif', 'image/bmp']);

// ---------------------------------------------------------------------------
// Small helpers

const $ = (id) => document.getElementById(id);

/**
 * el builds an element. props: text (textContent), className, dataset, on
 * (event listeners), anything else becomes an attribute. Children may be
 * nodes or strings (appended as text nodes, never parsed).
 */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'className') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child != null && child !== false) node.append(child);
  }
  return node;
}

/** A same-origin path from the server (avatarUrl), or null: never a javascript: or foreign URL. */
function safePath(url) {
  return typeof url === 'string' && url.startsWith('/') && !url.startsWith('//') ? url : null;
}

/** crypto.randomUUID needs a secure context; plain-http deployments get the same v4 shape. */
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function debounce(fn, ms) {
  let t;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function shortTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : dayFmt.format(d);
}

function messageTime(iso) {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? timeFmt.format(d) : `${dayFmt.format(d)}, ${timeFmt.format(d)}`;
}

// Icons are built as SVG elements from fixed path data (no markup parsing),
// so they look the same without an emoji font.
const ICONS = {
  file: 'M6 2h8l6 6v12a2 2 0 0 1-2 2H6a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2zm7 1.5V9h5.5L13 3.5z',
  clock: 'M12 2a10 10 0 1 1 0 20 10 10 0 0 1 0-20zm0 2a8 8 0 1 0 0 16 8 8 0 0 0 0-16zm1 3v5.4l3.5 2.1-1 1.7L11 13.6V7h2z',
};

function icon(name, size = 16) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon icon-${name}`);
  const path = document.createElementNS(NS, 'path');
  path.setAttribute('fill', 'currentColor');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

function humanSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function codePoints(s) {
  return [...s].length;
}

function toast(message, kind = 'error') {
  const t = el('div', { className: `toast ${kind}`, text: message });
  $('toasts').append(t);
  setTimeout(() => t.remove(), 6000);
}

// ---------------------------------------------------------------------------
// State

const state = {
  token: null,
  me: null,
  users: new Map(), // id -> public user
  userFetches: new Map(), // id -> in-flight promise
  chats: new Map(), // id -> chat (server object plus client fields, see upsertChat)
  openId: null,
  pending: new Map(), // clientMsgId -> unacked outgoing message
  socket: null,
  connGen: 0, // bumps on every connect; tells a resend from an in-flight emit
  everConnected: false,
  revoked: false,
  msgEls: new Map(), // key -> <li> of the open chat's messages
  uploads: [], // attachments waiting in the composer
  typingOut: null, // {chatId, sentAt, idle}
};

// Other members' read marks, learned from message:read events. The contract
// has no call that lists them, so they are remembered here (not secret) to
// keep ✓✓ across reloads. Shape: {chatId: {userId: seq}}.
let readMarks = {};
const saveMarks = debounce(() => {
  try {
    localStorage.setItem(MARKS_KEY, JSON.stringify(readMarks));
  } catch {
    /* storage full or disabled: ticks just fall back to ✓ after reload */
  }
}, 500);

// ---------------------------------------------------------------------------
// REST

class ApiError extends Error {
  constructor(status, body) {
    const e = body && body.error ? body.error : {};
    super(e.message || `Request failed (${status})`);
    this.status = status;
    this.code = e.code || 'unknown';
    this.fields = e.fields || null;
  }
}

/** Calls the REST API with the bearer token and the cookie (same-origin). */
async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  let payload;
  if (body instanceof FormData) payload = body; // the browser sets the multipart boundary
  else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' });
  } catch {
    throw new ApiError(0, { error: { code: 'network', message: 'Cannot reach Parley. Check your connection.' } });
  }
  if (res.status === 204) return null;
  const data = (res.headers.get('Content-Type') || '').includes('json') ? await res.json().catch(() => null) : null;
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    // A 401 outside of the auth calls means the session is gone.
    if (res.status === 401 && state.me && !path.startsWith('/api/auth/')) {
      endSession('Your session has ended. Please log in again.');
    }
    throw err;
  }
  return data;
}

/** Explains an error in words, field reasons included. */
function describe(err) {
  if (err && err.fields) {
    const parts = Object.entries(err.fields).map(([f, why]) => `${f[0].toUpperCase()}${f.slice(1)}: ${why}`);
    if (parts.length) return parts.join('. ');
  }
  if (err && err.code === 'rate_limited') return 'Too many attempts. Please wait a moment and try again.';
  return (err && err.message) || 'Something went wrong.';
}

// ---------------------------------------------------------------------------
// Views: loading, auth, main

function showView(name) {
  $('loading-view').hidden = name !== 'loading';
  $('auth-view').hidden = name !== 'auth';
  $('main-view').hidden = name !== 'main';
}

function showAuth(notice) {
  showView('auth');
  $('auth-notice').textContent = notice || '';
  $('auth-username').focus();
}

/** Forgets the session locally and starts over on the login screen. */
function endSession(notice) {
  if (state.revoked) return;
  if (state.loggingOut) notice = 'You have logged out.';
  state.revoked = true;
  localStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(MARKS_KEY);
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  if (state.socket) state.socket.disconnect();
  // A reload is the surest way to drop every trace of the previous
  // account's chats and messages from memory and the DOM.
  history.replaceState(null, '', location.pathname);
  location.reload();
}

async function onAuthSubmit(ev) {
  ev.preventDefault();
  const mode = ev.submitter && ev.submitter.value === 'signup' ? 'signup' : 'login';
  const username = $('auth-username').value.trim();
  const email = $('auth-email').value.trim();
  const password = $('auth-password').value;
  const error = $('auth-error');
  error.textContent = '';
  let path;
  let body;
  if (mode === 'signup') {
    if (!username || !email || !password) {
      error.textContent = 'To sign up, fill in username, email and password.';
      return;
    }
    path = '/api/auth/signup';
    body = { username, email, password };
  } else {
    if (!(username || email) || !password) {
      error.textContent = 'To log in, fill in your username (or email) and password.';
      return;
    }
    path = '/api/auth/login';
    body = { login: username || email, password };
  }
  const buttons = ev.currentTarget.querySelectorAll('button');
  buttons.forEach((b) => (b.disabled = true));
  try {
    const grant = await api('POST', path, body);
    state.token = grant.token;
    localStorage.setItem(TOKEN_KEY, grant.token);
    state.me = grant.user;
    $('auth-password').value = '';
    startApp();
  } catch (err) {
    error.textContent = describe(err);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

async function logout() {
  // Ending the session makes the server send session:revoked to our own
  // socket: close it first, and let endSession tell "logged out" anyway.
  state.loggingOut = true;
  if (state.socket) state.socket.disconnect();
  try {
    await api('POST', '/api/auth/logout');
  } catch {
    /* offline or already ended: forgetting the token locally still logs out */
  }
  endSession('You have logged out.');
}

async function boot() {
  wireEvents();
  const notice = sessionStorage.getItem(NOTICE_KEY);
  sessionStorage.removeItem(NOTICE_KEY);
  state.token = localStorage.getItem(TOKEN_KEY);
  if (!state.token) {
    showAuth(notice);
    return;
  }
  // Resume the session; retry while the server is unreachable.
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15000)) {
    try {
      state.me = await api('GET', '/api/me');
      break;
    } catch (err) {
      if (err.status === 401) {
        localStorage.removeItem(TOKEN_KEY);
        state.token = null;
        showAuth('Your session has ended. Please log in again.');
        return;
      }
      $('loading-text').textContent = 'Cannot reach Parley. Retrying…';
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  startApp();
}

function startApp() {
  state.revoked = false;
  try {
    readMarks = JSON.parse(localStorage.getItem(MARKS_KEY) || '{}') || {};
  } catch {
    readMarks = {};
  }
  state.users.set(state.me.id, state.me);
  showView('main');
  renderMe();
  connectSocket();
  loadChats().catch((err) => toast(describe(err)));
}

function renderMe() {
  $('me-name').textContent = state.me.displayName || state.me.username;
  fillAvatar($('me-avatar'), state.me.avatarUrl, state.me.displayName || state.me.username, state.me.id);
}

// ---------------------------------------------------------------------------
// Users and avatars

function nameOf(userId) {
  const u = state.users.get(userId);
  return u ? u.displayName || u.username : '…';
}

/** Fetches users not yet known; re-renders what shows them when they arrive. */
function ensureUsers(ids) {
  const missing = ids.filter((id) => id && !state.users.has(id) && !state.userFetches.has(id));
  for (const id of missing) {
    const p = api('GET', `/api/users/${encodeURIComponent(id)}`)
      .then((u) => {
        state.users.set(u.id, u);
        userChanged(u.id);
      })
      .catch(() => {
        /* a user we cannot see stays "…" */
      })
      .finally(() => state.userFetches.delete(id));
    state.userFetches.set(id, p);
  }
  return Promise.all(ids.map((id) => state.userFetches.get(id)).filter(Boolean));
}

function userChanged(userId) {
  scheduleChatList();
  const chat = openChat();
  if (!chat) return;
  if (chat.members.some((m) => m.userId === userId)) renderChatHeader(chat);
  for (const li of state.msgEls.values()) {
    if (li.dataset.sender === userId) {
      li.querySelectorAll('.sender').forEach((s) => (s.textContent = nameOf(userId)));
      const av = li.querySelector('.avatar');
      if (av) fillAvatar(av, state.users.get(userId)?.avatarUrl, nameOf(userId), userId);
    }
  }
}

function hueOf(id) {
  let h = 0;
  for (const c of String(id)) h = (h * 31 + c.charCodeAt(0)) % 360;
  return h;
}

function initials(name) {
  const parts = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
  const first = parts[0] ? [...parts[0]][0] : '?';
  const second = parts[1] ? [...parts[1]][0] : '';
  return (first + second).toUpperCase();
}

/** Fills an avatar box: the image if there is one, else coloured initials. */
function fillAvatar(box, url, name, seed) {
  box.replaceChildren();
  box.style.setProperty('--hue', hueOf(seed || name)); // CSSOM, allowed by the CSP
  const src = safePath(url);
  if (src) {
    box.append(el('img', { src, alt: '', loading: 'lazy', decoding: 'async' }));
  } else {
    box.append(initials(name));
  }
}

function avatarFor(userId, extraClass = '') {
  const box = el('span', { className: `avatar ${extraClass}`, 'aria-hidden': 'true' });
  const u = state.users.get(userId);
  fillAvatar(box, u && u.avatarUrl, nameOf(userId), userId);
  return box;
}

async function onAvatarChosen(ev) {
  const file = ev.target.files[0];
  ev.target.value = '';
  if (!file) return;
  const form = new FormData();
  form.append('file', file);
  try {
    state.me = await api('PUT', '/api/me/avatar', form);
    state.users.set(state.me.id, state.me);
    renderMe();
    userChanged(state.me.id);
    toast('Avatar updated.', 'info');
  } catch (err) {
    toast(`Avatar not changed: ${describe(err)}`);
  }
}

// ---------------------------------------------------------------------------
// Chats

function peerOf(chat) {
  if (chat.type !== 'direct') return null;
  const other = chat.members.find((m) => m.userId !== state.me.id);
  return other ? other.userId : null;
}

function titleOf(chat) {
  if (chat.type === 'direct') {
    const peer = peerOf(chat);
    return peer ? nameOf(peer) : 'Direct chat';
  }
  return chat.name || 'Unnamed group';
}

function activityOf(chat) {
  return Date.parse((chat.lastMessage && chat.lastMessage.createdAt) || chat.createdAt) || 0;
}

/** Merges a chat object from the server into the client's copy. */
function upsertChat(c, { fromList = false } = {}) {
  let chat = state.chats.get(c.id);
  if (!chat) {
    chat = {
      id: c.id,
      unreadCount: c.unreadCount || 0,
      lastMessage: c.lastMessage || null,
      msgs: new Map(), // seq -> message, only while `loaded`
      loaded: false,
      minSeq: 0,
      maxSeq: 0,
      hasMoreOlder: false,
      loadingOlder: false,
      typing: new Map(), // userId -> expiry timer
      myRead: 0,
    };
    state.chats.set(c.id, chat);
  } else {
    if (fromList) chat.unreadCount = c.unreadCount || 0;
    if (c.lastMessage && (!chat.lastMessage || c.lastMessage.seq > chat.lastMessage.seq)) chat.lastMessage = c.lastMessage;
  }
  chat.type = c.type;
  chat.name = c.name;
  chat.members = c.members || [];
  chat.createdAt = c.createdAt;
  // Direct: the peer. Groups can be large: the first members, and senders
  // as their messages show up.
  const wanted = chat.type === 'direct' ? [peerOf(chat)] : chat.members.slice(0, 20).map((m) => m.userId);
  if (chat.lastMessage) wanted.push(chat.lastMessage.senderId);
  ensureUsers(wanted);
  scheduleChatList();
  if (state.openId === chat.id) renderChatHeader(chat);
  return chat;
}

function removeChat(chatId, why) {
  const chat = state.chats.get(chatId);
  if (!chat) return;
  state.chats.delete(chatId);
  scheduleChatList();
  if (state.openId === chatId) {
    toast(why || `You are no longer in ${titleOf(chat)}.`, 'info');
    location.hash = '';
  }
}

async function loadChats() {
  const { chats } = await api('GET', '/api/chats');
  const seen = new Set();
  for (const c of chats) {
    seen.add(c.id);
    upsertChat(c, { fromList: true });
  }
  // Chats we left (or were removed from) while away.
  for (const id of [...state.chats.keys()]) if (!seen.has(id)) removeChat(id);
  route();
}

async function fetchChat(chatId) {
  try {
    return upsertChat(await api('GET', `/api/chats/${encodeURIComponent(chatId)}`));
  } catch {
    return null;
  }
}

// The chat list re-renders at most once a frame, keeping items (and the
// keyboard focus on them) when only their content changes.
let listQueued = false;
function scheduleChatList() {
  if (listQueued) return;
  listQueued = true;
  requestAnimationFrame(() => {
    listQueued = false;
    renderChatList();
  });
}

const chatItems = new Map(); // chatId -> <li>

function renderChatList() {
  const list = $('chat-list');
  const chats = [...state.chats.values()].sort((a, b) => activityOf(b) - activityOf(a));
  $('chat-empty').hidden = chats.length > 0;
  for (const [id, li] of chatItems) {
    if (!state.chats.has(id)) {
      li.remove();
      chatItems.delete(id);
    }
  }
  const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('#chat-list li');
  chats.forEach((chat, i) => {
    let li = chatItems.get(chat.id);
    if (!li) {
      li = el('li', { dataset: { chatId: chat.id } });
      chatItems.set(chat.id, li);
    }
    li.replaceChildren(chatButton(chat));
    // Moving a node drops its focus: only move what is out of place.
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
  // Unread total in the tab title, for when the tab is in the background.
  const unreadTotal = chats.reduce((n, c) => n + (c.id === state.openId ? 0 : c.unreadCount || 0), 0);
  document.title = unreadTotal ? `(${unreadTotal}) Parley` : 'Parley';
  if (focused && focused.isConnected) {
    const b = focused.querySelector('button');
    if (b && document.activeElement !== b) b.focus();
  }
}

function chatButton(chat) {
  const peer = peerOf(chat);
  const peerUser = peer && state.users.get(peer);
  const online = !!(peerUser && peerUser.online);
  const avatar = chat.type === 'direct' && peer ? avatarFor(peer) : groupAvatar(chat);
  const typing = typingText(chat, true);
  const lm = chat.lastMessage;
  let preview = '';
  if (typing) preview = typing;
  else if (lm) {
    const who = lm.senderId === state.me.id ? 'You: ' : chat.type === 'group' ? `${nameOf(lm.senderId)}: ` : '';
    const what = lm.text != null ? lm.text : attachmentSummary(lm.attachments || []);
    preview = who + what;
  } else preview = chat.type === 'group' ? `${chat.members.length} members` : 'No messages yet';
  const unread = chat.unreadCount > 0 && state.openId !== chat.id ? chat.unreadCount : 0;

  return el(
    'button',
    {
      type: 'button',
      className: `chat-item${unread ? ' has-unread' : ''}`,
      'aria-current': state.openId === chat.id ? 'true' : null,
      on: { click: () => navigateToChat(chat.id) },
    },
    el('span', { className: 'avatar-wrap' }, avatar, chat.type === 'direct' ? el('span', { className: `presence${online ? ' online' : ''}`, 'aria-hidden': 'true' }) : null),
    el(
      'span',
      { className: 'chat-main' },
      el(
        'span',
        { className: 'chat-row' },
        el('span', { className: 'chat-name', text: titleOf(chat) }),
        chat.type === 'direct' ? el('span', { className: 'visually-hidden', text: online ? ', online' : ', offline' }) : null,
        unread ? el('span', { className: 'visually-hidden', text: `, ${unread} unread` }) : null,
        el('time', { className: 'chat-time', datetime: (lm && lm.createdAt) || chat.createdAt, text: shortTime((lm && lm.createdAt) || chat.createdAt) }),
      ),
      el(
        'span',
        { className: 'chat-row' },
        el('span', { className: `chat-preview${typing ? ' is-typing' : ''}`, text: preview }),
        unread ? el('span', { className: 'badge', 'aria-hidden': 'true', text: unread > 99 ? '99+' : String(unread) }) : null,
      ),
    ),
  );
}

function attachmentSummary(files) {
  if (!files.length) return '';
  if (files.every((f) => RASTER_IMAGES.has(f.contentType))) return files.length === 1 ? 'Photo' : `${files.length} photos`;
  return files.length === 1 ? `File: ${files[0].name}` : `${files.length} files`;
}

function groupAvatar(chat) {
  const box = el('span', { className: 'avatar group', 'aria-hidden': 'true' });
  fillAvatar(box, null, chat.name || 'Group', chat.id);
  return box;
}

// ---------------------------------------------------------------------------
// Routing: #chat/<id> opens a chat; narrow screens show one pane at a time.

// Set when the user picked a chat, so route() moves the focus to the
// composer (a reload or the back button does not steal focus).
let pendingFocus = false;

function navigateToChat(chatId) {
  const target = `#chat/${chatId}`;
  if (location.hash === target) route({ focus: true });
  else {
    pendingFocus = true;
    location.hash = target;
  }
}

function route(opts = {}) {
  if (!state.me || $('main-view').hidden) return;
  const m = /^#chat\/([^/]+)$/.exec(location.hash);
  const focus = opts.focus || pendingFocus;
  pendingFocus = false;
  if (m && state.chats.has(m[1])) {
    // The pane first: the composer cannot take focus while hidden.
    $('main-view').dataset.pane = 'chat';
    if (state.openId !== m[1]) showChat(m[1], { focus });
    else if (focus) $('message-input').focus();
    return;
  }
  if (m && !state.chats.size) return; // the list is still loading
  closeChat();
}

function closeChat() {
  stopTyping();
  const was = state.openId;
  state.openId = null;
  state.msgEls.clear();
  $('messages').replaceChildren();
  $('chat-view').hidden = true;
  $('no-chat').hidden = false;
  $('main-view').dataset.pane = 'list';
  scheduleChatList();
  if (was) {
    const b = chatItems.get(was)?.querySelector('button');
    if (b && window.matchMedia('(max-width: 760px)').matches) b.focus();
  }
}

function openChat() {
  return state.openId ? state.chats.get(state.openId) : null;
}

async function showChat(chatId, { focus = false } = {}) {
  stopTyping();
  const chat = state.chats.get(chatId);
  state.openId = chatId;
  state.msgEls.clear();
  $('messages').replaceChildren();
  $('no-chat').hidden = true;
  $('chat-view').hidden = false;
  $('jump').hidden = true;
  renderChatHeader(chat);
  renderTyping(chat);
  scheduleChatList();
  if (focus) $('message-input').focus();

  if (!chat.loaded) {
    setHistoryStatus('Loading messages…');
    try {
      const page = await fetchHistory(chatId, { limit: PAGE });
      if (state.openId !== chatId) return;
      chat.msgs.clear();
      chat.minSeq = chat.maxSeq = 0;
      chat.loaded = true;
      chat.hasMoreOlder = page.hasMore;
      storeMessages(chat, page.messages);
    } catch (err) {
      if (state.openId === chatId) setHistoryStatus(`Could not load messages: ${describe(err)}`);
      return;
    }
  }
  renderAllMessages(chat);
  scrollToBottom();
  // Something may have arrived while the first page was on its way.
  if (chat.lastMessage && chat.lastMessage.seq > chat.maxSeq) catchUp(chat);
  await fillViewport(chat);
  maybeMarkRead();
}

function renderChatHeader(chat) {
  $('chat-title').textContent = titleOf(chat);
  const peer = peerOf(chat);
  if (peer) fillAvatar($('chat-avatar'), state.users.get(peer)?.avatarUrl, nameOf(peer), peer);
  else fillAvatar($('chat-avatar'), null, chat.name || 'Group', chat.id);
  renderChatSub(chat);
}

function renderChatSub(chat) {
  const sub = $('chat-sub');
  if (chat.type === 'group') {
    sub.textContent = `${chat.members.length} members`;
    return;
  }
  const u = state.users.get(peerOf(chat));
  if (!u) sub.textContent = '';
  else if (u.online) sub.textContent = 'online';
  else sub.textContent = u.lastSeenAt ? `last seen ${fullFmt.format(new Date(u.lastSeenAt))}` : 'offline';
}

// ---------------------------------------------------------------------------
// Messages

/** Pages history over the socket when connected, else over REST. */
async function fetchHistory(chatId, query) {
  const s = state.socket;
  if (s && s.connected) {
    try {
      const res = await s.timeout(ACK_TIMEOUT).emitWithAck('chat:history', { chatId, ...query });
      if (res && res.ok) return res;
      throw new ApiError(400, res);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      // Ack timeout or a dropped connection: REST can still answer.
    }
  }
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) params.set(k, String(v));
  return api('GET', `/api/chats/${encodeURIComponent(chatId)}/messages?${params}`);
}

/** Adds messages to a loaded chat's store; returns the ones that were new. */
function storeMessages(chat, messages) {
  ensureUsers([...new Set(messages.map((m) => m.senderId))]);
  const added = [];
  for (const m of messages) {
    if (chat.msgs.has(m.seq)) continue;
    chat.msgs.set(m.seq, m);
    added.push(m);
    chat.minSeq = chat.minSeq ? Math.min(chat.minSeq, m.seq) : m.seq;
    chat.maxSeq = Math.max(chat.maxSeq, m.seq);
    if (!chat.lastMessage || m.seq > chat.lastMessage.seq) chat.lastMessage = m;
    // A message of ours that history brought back before its ack did.
    if (m.senderId === state.me.id && m.clientMsgId && state.pending.has(m.clientMsgId)) dropPending(m.clientMsgId);
  }
  return added;
}

/** Takes in messages from any source: live, ack, history catch-up. */
function receiveMessages(chat, messages) {
  if (!chat.loaded) {
    for (const m of messages) {
      if (!chat.lastMessage || m.seq > chat.lastMessage.seq) chat.lastMessage = m;
      if (m.senderId === state.me.id && m.clientMsgId && state.pending.has(m.clientMsgId)) dropPending(m.clientMsgId);
    }
    scheduleChatList();
    return [];
  }
  const before = chat.maxSeq;
  const wasAtBottom = isAtBottom();
  const added = storeMessages(chat, messages);
  if (state.openId === chat.id) {
    for (const m of added) placeMessage(chat, m);
    if (added.length) {
      const mine = added.some((m) => m.senderId === state.me.id);
      if (wasAtBottom || mine) scrollToBottom();
      else $('jump').hidden = false;
    }
    maybeMarkRead();
  }
  // A seq beyond the next one means something was missed: fetch the gap.
  if (added.length && Math.min(...added.map((m) => m.seq)) > before + 1) catchUp(chat);
  scheduleChatList();
  return added;
}

/** Fetches everything newer than the last seq we hold. */
async function catchUp(chat) {
  if (!chat.loaded) return;
  if (chat.catchingUp) {
    chat.catchUpAgain = true;
    return;
  }
  chat.catchingUp = true;
  try {
    for (let more = true; more; ) {
      const page = await fetchHistory(chat.id, { after: chat.maxSeq, limit: 100 });
      receiveMessages(chat, page.messages);
      more = page.hasMore && page.messages.length > 0;
    }
  } catch (err) {
    if (err.status !== 404) toast(`Could not catch up: ${describe(err)}`);
    else removeChat(chat.id);
  } finally {
    chat.catchingUp = false;
    if (chat.catchUpAgain) {
      chat.catchUpAgain = false;
      catchUp(chat);
    }
  }
}

async function loadOlder(chat) {
  if (!chat.loaded || !chat.hasMoreOlder || chat.loadingOlder || !chat.minSeq) return;
  chat.loadingOlder = true;
  setHistoryStatus('Loading older messages…');
  const scroller = $('scroller');
  try {
    const page = await fetchHistory(chat.id, { before: chat.minSeq, limit: PAGE });
    if (state.openId !== chat.id) return;
    chat.hasMoreOlder = page.hasMore;
    // Keep the reader's place: grow the list above without moving the view.
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;
    for (const m of storeMessages(chat, page.messages)) placeMessage(chat, m);
    scroller.scrollTop = scroller.scrollHeight - fromBottom;
  } catch (err) {
    toast(`Could not load older messages: ${describe(err)}`);
  } finally {
    chat.loadingOlder = false;
    if (state.openId === chat.id) updateHistoryStatus(chat);
  }
}

/** Loads older pages until the view can scroll (or history ends). */
async function fillViewport(chat) {
  const scroller = $('scroller');
  while (state.openId === chat.id && chat.hasMoreOlder && scroller.scrollHeight <= scroller.clientHeight + 40) {
    const had = chat.msgs.size;
    await loadOlder(chat);
    if (chat.msgs.size === had) break;
    scrollToBottom();
  }
}

function setHistoryStatus(text) {
  $('history-status').textContent = text;
}

function updateHistoryStatus(chat) {
  if (!chat.loaded) return;
  if (chat.hasMoreOlder) setHistoryStatus('');
  else setHistoryStatus(chat.msgs.size ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!');
}

function renderAllMessages(chat) {
  state.msgEls.clear();
  $('messages').replaceChildren();
  const sorted = [...chat.msgs.values()].sort((a, b) => a.seq - b.seq);
  for (const m of sorted) placeMessage(chat, m);
  for (const p of state.pending.values()) if (p.chatId === chat.id) placePending(p);
  updateHistoryStatus(chat);
}

/** Inserts (or replaces) a stored message's <li> at its seq position. */
function placeMessage(chat, m) {
  const list = $('messages');
  const li = messageItem(chat, m);
  const old = state.msgEls.get(m.id);
  state.msgEls.set(m.id, li);
  if (old) {
    old.replaceWith(li);
    return;
  }
  // Before the first item with a larger seq, or before pending ones.
  let next = null;
  for (const node of list.children) {
    const seq = Number(node.dataset.seq);
    if (node.dataset.pending === 'true' || seq > m.seq) {
      next = node;
      break;
    }
  }
  list.insertBefore(li, next);
  updateHistoryStatus(chat);
}

function placePending(p) {
  const key = `pending:${p.clientMsgId}`;
  const li = messageItem(state.chats.get(p.chatId), p);
  const old = state.msgEls.get(key);
  state.msgEls.set(key, li);
  if (old) old.replaceWith(li);
  else $('messages').append(li);
}

function messageItem(chat, m) {
  const pending = !!m.pending;
  const mine = m.senderId === state.me.id;
  const showSender = chat.type === 'group' && !mine;
  const li = el('li', {
    className: `message ${mine ? 'mine' : 'theirs'}${pending ? ' is-pending' : ''}`,
    dataset: { seq: pending ? '' : String(m.seq), pending: String(pending), sender: m.senderId },
  });
  if (showSender) li.append(avatarFor(m.senderId, 'small'));
  const bubble = el('div', { className: 'bubble' });
  // The sender is always in the text for assistive tech; visible in groups.
  bubble.append(el('span', { className: showSender ? 'sender' : 'sender visually-hidden', text: nameOf(m.senderId) }));
  bubble.append(el('span', { className: 'visually-hidden', text: ': ' }));
  if (m.text != null && m.text !== '') bubble.append(el('p', { className: 'text', text: m.text }));
  const files = m.attachments || [];
  if (files.length) bubble.append(el('div', { className: 'attachments' }, files.map(attachmentView)));
  if (m.uploading) bubble.append(el('p', { className: 'uploading', text: `Uploading ${m.uploading}…` }));

  const meta = el('span', { className: 'meta' });
  meta.append(el('time', { datetime: m.createdAt, title: fullFmt.format(new Date(m.createdAt)), text: messageTime(m.createdAt) }));
  if (mine) meta.append(tickView(chat, m));
  bubble.append(meta);
  if (pending && m.failed) {
    bubble.append(
      el(
        'div',
        { className: 'failed' },
        el('span', { text: `Not sent: ${m.error || 'error'}` }),
        el('button', { type: 'button', className: 'link', text: 'Retry', on: { click: () => retryPending(m.clientMsgId) } }),
        el('button', { type: 'button', className: 'link', text: 'Discard', on: { click: () => discardPending(m.clientMsgId) } }),
      ),
    );
  }
  li.append(bubble);
  return li;
}

function attachmentView(a) {
  const href = `/api/files/${encodeURIComponent(a.id)}`;
  if (RASTER_IMAGES.has(a.contentType)) {
    const img = el('img', { src: href, alt: a.name, loading: 'lazy', decoding: 'async' });
    // An image that grows the list should not push the newest line out of view.
    img.addEventListener('load', () => {
      if (stickToBottom) scrollToBottom();
    });
    return el('a', { className: 'image', href, target: '_blank', rel: 'noopener' }, img);
  }
  return el(
    'a',
    { className: 'file', href, download: a.name },
    icon('file', 20),
    el('span', { className: 'file-name', text: a.name }),
    el('span', { className: 'file-size', text: ` (${humanSize(a.size)})` }),
  );
}

/** ✓ sent, ✓✓ read by every other member, a clock while unacked. */
function tickState(chat, m) {
  if (m.pending) return m.failed ? 'failed' : 'sending';
  const others = chat.members.filter((x) => x.userId !== state.me.id);
  const marks = readMarks[chat.id] || {};
  if (others.length && others.every((o) => (marks[o.userId] || 0) >= m.seq)) return 'read';
  return 'sent';
}

const TICKS = { sent: '✓', read: '✓✓', failed: '!' };
const TICK_NAMES = { sending: 'sending', sent: 'sent', read: 'read', failed: 'not sent' };

function tickView(chat, m) {
  const s = tickState(chat, m);
  const tick = el('span', { className: `ticks ${s}`, role: 'img', 'aria-label': TICK_NAMES[s], title: TICK_NAMES[s], text: TICKS[s] || null });
  if (s === 'sending') tick.append(icon('clock', 12));
  return tick;
}

function refreshTicks(chat) {
  if (state.openId !== chat.id) return;
  for (const li of $('messages').children) {
    if (li.dataset.pending === 'true' || li.dataset.sender !== state.me.id) continue;
    const m = chat.msgs.get(Number(li.dataset.seq));
    const old = li.querySelector('.ticks');
    if (m && old) {
      const next = tickView(chat, m);
      if (next.className !== old.className) old.replaceWith(next);
    }
  }
}

// Scrolling: "stuck to the bottom" is remembered between events, since a
// growing image changes scrollHeight after the fact.
let stickToBottom = true;

function isAtBottom() {
  const s = $('scroller');
  return s.scrollHeight - s.scrollTop - s.clientHeight < 60;
}

function scrollToBottom() {
  const s = $('scroller');
  s.scrollTop = s.scrollHeight;
  stickToBottom = true;
  $('jump').hidden = true;
}

function onScroll() {
  const chat = openChat();
  if (!chat) return;
  stickToBottom = isAtBottom();
  if (stickToBottom) {
    $('jump').hidden = true;
    maybeMarkRead();
  }
  if ($('scroller').scrollTop < 150) loadOlder(chat);
}

/** Tells the server we have read the newest message, when it is on screen. */
function maybeMarkRead() {
  const chat = openChat();
  if (!chat || !chat.loaded || document.visibilityState !== 'visible' || !isAtBottom()) return;
  const newest = chat.maxSeq;
  if (!newest || newest <= chat.myRead) {
    if (chat.unreadCount) {
      chat.unreadCount = 0;
      scheduleChatList();
    }
    return;
  }
  chat.myRead = newest;
  chat.unreadCount = 0;
  scheduleChatList();
  const s = state.socket;
  if (s && s.connected) s.emit('message:read', { chatId: chat.id, seq: newest });
  else api('POST', `/api/chats/${encodeURIComponent(chat.id)}/read`, { seq: newest }).catch(() => {});
}

// ---------------------------------------------------------------------------
// Sending

/** Composer attachments upload as soon as they are picked; Send waits for them. */
function onFilesChosen(ev) {
  for (const file of ev.target.files) {
    const up = { file, id: uuid(), result: null, error: null };
    const form = new FormData();
    form.append('file', file);
    up.promise = api('POST', '/api/files', form).then(
      (f) => {
        up.result = f;
        renderUploads();
        return f;
      },
      (err) => {
        up.error = describe(err);
        renderUploads();
        throw err;
      },
    );
    up.promise.catch(() => {}); // reported in the chip and at send time
    state.uploads.push(up);
  }
  ev.target.value = '';
  renderUploads();
  $('message-input').focus();
}

function renderUploads() {
  const list = $('uploads');
  list.hidden = state.uploads.length === 0;
  list.replaceChildren(
    ...state.uploads.map((up) =>
      el(
        'li',
        { className: `upload${up.error ? ' failed' : up.result ? ' done' : ''}` },
        el('span', { className: 'upload-name', text: up.file.name }),
        el('span', { className: 'upload-state', text: up.error ? ` — ${up.error}` : up.result ? '' : ' — uploading…' }),
        el('button', {
          type: 'button',
          className: 'chip-remove',
          'aria-label': `Remove ${up.file.name}`,
          text: '×',
          on: {
            click: () => {
              state.uploads = state.uploads.filter((u) => u !== up);
              renderUploads();
            },
          },
        }),
      ),
    ),
  );
}

async function onSend(ev) {
  ev.preventDefault();
  const chat = openChat();
  if (!chat) return;
  const input = $('message-input');
  const text = input.value.replace(/\s+$/, '').replace(/^\n+/, '');
  const uploads = state.uploads;
  if (!text.trim() && uploads.length === 0) return;
  if (codePoints(text) > 4000) {
    toast('A message can be at most 4000 characters.');
    return;
  }
  if (uploads.length > 10) {
    toast('At most 10 attachments per message.');
    return;
  }
  input.value = '';
  autoGrow();
  state.uploads = [];
  renderUploads();
  stopTyping();

  const p = {
    pending: true,
    clientMsgId: uuid(),
    chatId: chat.id,
    senderId: state.me.id,
    text: text.trim() ? text : null,
    attachments: [],
    createdAt: new Date().toISOString(),
    uploading: uploads.length ? uploads.map((u) => u.file.name).join(', ') : null,
    failed: false,
    sentGen: null,
  };
  state.pending.set(p.clientMsgId, p);
  if (state.openId === chat.id) {
    placePending(p);
    scrollToBottom();
  }
  if (uploads.length) {
    try {
      p.attachments = (await Promise.all(uploads.map((u) => u.promise))).map((f) => ({ id: f.id, name: f.name, size: f.size, contentType: f.contentType }));
    } catch (err) {
      p.failed = true;
      p.error = `upload failed (${describe(err)})`;
      p.uploading = null;
      p.retryUploads = uploads;
      rerenderPending(p);
      return;
    }
    p.uploading = null;
    rerenderPending(p);
  }
  transmit(p);
}

/** Emits a pending message once per connection; the ack settles it. */
function transmit(p) {
  const s = state.socket;
  if (!s || !s.connected || p.failed || p.uploading || p.sentGen === state.connGen) return;
  const gen = state.connGen;
  p.sentGen = gen;
  const payload = { chatId: p.chatId, clientMsgId: p.clientMsgId };
  if (p.text != null) payload.text = p.text;
  if (p.attachments.length) payload.attachments = p.attachments.map((a) => a.id);
  s.timeout(ACK_TIMEOUT).emit('message:send', payload, (err, res) => {
    if (!state.pending.has(p.clientMsgId)) return; // settled already (history, other ack)
    if (err) {
      // No ack in time, or the connection dropped: same clientMsgId again
      // (now if still connected, else on the next connect).
      if (p.sentGen === gen) p.sentGen = null;
      if (s.connected) transmit(p);
      return;
    }
    if (res && res.ok) {
      confirmPending(p, res.message);
      return;
    }
    p.failed = true;
    p.error = describe(res && res.error ? new ApiError(400, res) : null);
    rerenderPending(p);
  });
}

function confirmPending(p, message) {
  dropPending(p.clientMsgId);
  const chat = state.chats.get(message.chatId);
  if (chat) receiveMessages(chat, [message]);
}

function dropPending(clientMsgId) {
  state.pending.delete(clientMsgId);
  const key = `pending:${clientMsgId}`;
  const li = state.msgEls.get(key);
  if (li) {
    li.remove();
    state.msgEls.delete(key);
  }
}

function rerenderPending(p) {
  if (state.openId === p.chatId && state.pending.has(p.clientMsgId)) placePending(p);
}

async function retryPending(clientMsgId) {
  const p = state.pending.get(clientMsgId);
  if (!p) return;
  if (p.retryUploads) {
    toast('Attach the files again: their upload failed.');
    discardPending(clientMsgId);
    return;
  }
  p.failed = false;
  p.error = null;
  p.sentGen = null;
  rerenderPending(p);
  transmit(p);
}

function discardPending(clientMsgId) {
  dropPending(clientMsgId);
}

function resendPending() {
  for (const p of state.pending.values()) transmit(p);
}

// Typing: announce on the first keystroke, re-announce while it goes on,
// and stop after an idle pause, on send, or on leaving the chat.
function onComposerInput() {
  autoGrow();
  const chat = openChat();
  if (!chat) return;
  const input = $('message-input');
  if (!input.value.trim()) {
    stopTyping();
    return;
  }
  const t = state.typingOut;
  const now = Date.now();
  if (!t || t.chatId !== chat.id || now - t.sentAt > TYPING_REFRESH) {
    if (t && t.chatId !== chat.id) stopTyping();
    emitTyping(chat.id, true);
    state.typingOut = { chatId: chat.id, sentAt: now, idle: state.typingOut?.idle };
  }
  clearTimeout(state.typingOut.idle);
  state.typingOut.idle = setTimeout(stopTyping, TYPING_IDLE);
}

function stopTyping() {
  const t = state.typingOut;
  if (!t) return;
  clearTimeout(t.idle);
  state.typingOut = null;
  emitTyping(t.chatId, false);
}

function emitTyping(chatId, isTyping) {
  const s = state.socket;
  if (s && s.connected) s.emit('typing', { chatId, isTyping });
}

function onComposerKey(ev) {
  // Enter sends; Shift+Enter is a new line; IME composition is left alone.
  if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    $('composer').requestSubmit();
  }
}

function autoGrow() {
  const input = $('message-input');
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

// ---------------------------------------------------------------------------
// Typing shown

function typingText(chat, short) {
  const names = [...chat.typing.keys()].map(nameOf);
  if (!names.length) return '';
  if (short && chat.type === 'direct') return 'typing…';
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return `${names[0]} and ${names.length - 1} others are typing…`;
}

function renderTyping(chat) {
  if (state.openId !== chat.id) return;
  $('typing').textContent = typingText(chat, false);
}

function onTyping({ chatId, userId, isTyping }) {
  const chat = state.chats.get(chatId);
  if (!chat || userId === state.me.id) return;
  clearTimeout(chat.typing.get(userId));
  if (isTyping) {
    ensureUsers([userId]);
    chat.typing.set(
      userId,
      setTimeout(() => onTyping({ chatId, userId, isTyping: false }), TYPING_EXPIRE),
    );
  } else chat.typing.delete(userId);
  renderTyping(chat);
  scheduleChatList();
}

// ---------------------------------------------------------------------------
// Socket

function setConn(s, text) {
  $('conn').dataset.state = s;
  $('conn-text').textContent = text;
}

function connectSocket() {
  if (typeof io !== 'function') {
    setConn('offline', 'Offline');
    toast('The socket.io client did not load.');
    return;
  }
  setConn('connecting', 'Connecting…');
  // auth as a function: every reconnect sends the current token. The cookie
  // goes along as well (same origin), for servers that read that instead.
  const socket = io({ auth: (cb) => cb({ token: state.token }), withCredentials: true });
  state.socket = socket;

  socket.on('connect', () => {
    state.connGen += 1;
    setConn('online', 'Online');
    const reconnect = state.everConnected;
    state.everConnected = true;
    resendPending();
    if (reconnect) {
      // Catch up: the chat list (unread counts, new chats), the open chat's
      // missed messages, and presence. Other chats reload when opened.
      for (const chat of state.chats.values()) {
        if (chat.id !== state.openId) {
          chat.loaded = false;
          chat.msgs.clear();
          chat.minSeq = chat.maxSeq = 0;
        }
        chat.typing.forEach(clearTimeout);
        chat.typing.clear();
      }
      loadChats().catch(() => {});
      const open = openChat();
      if (open) catchUp(open);
    }
    refreshPresence();
  });

  socket.on('disconnect', (reason) => {
    if (state.revoked || state.loggingOut) return;
    if (!navigator.onLine) setConn('offline', 'Offline');
    else setConn('reconnecting', 'Reconnecting…');
    if (reason === 'io server disconnect') {
      // The server ended this socket; it never does so for a live session,
      // but check rather than guess, then reconnect by hand (socket.io will not).
      api('GET', '/api/me').then(() => socket.connect(), () => {});
    }
  });

  socket.on('connect_error', (err) => {
    if (err && err.message === 'unauthorized') {
      endSession('Your session has ended. Please log in again.');
      return;
    }
    setConn(navigator.onLine ? 'reconnecting' : 'offline', navigator.onLine ? 'Reconnecting…' : 'Offline');
    // A refusal in a server middleware stops socket.io's own retries.
    if (!socket.active) setTimeout(() => socket.connect(), 2000);
  });

  socket.io.on('reconnect_attempt', () => {
    if (navigator.onLine) setConn('reconnecting', 'Reconnecting…');
  });

  socket.on('session:revoked', () => endSession('This session was ended. Please log in again.'));

  socket.on('message:new', async (m) => {
    let chat = state.chats.get(m.chatId);
    if (!chat) chat = await fetchChat(m.chatId);
    if (!chat) return;
    chat.typing.delete(m.senderId);
    renderTyping(chat);
    const added = receiveMessages(chat, [m]);
    const counted = !chat.loaded || added.length > 0;
    if (m.senderId !== state.me.id && counted && !(state.openId === chat.id && isAtBottom() && document.visibilityState === 'visible')) {
      chat.unreadCount += 1;
    }
    scheduleChatList();
    maybeMarkRead();
  });

  socket.on('message:read', ({ chatId, userId, seq }) => {
    const chat = state.chats.get(chatId);
    if (!chat) return;
    if (userId === state.me.id) {
      // Read on another device of ours.
      chat.myRead = Math.max(chat.myRead, seq);
      if (!chat.lastMessage || seq >= chat.lastMessage.seq) chat.unreadCount = 0;
      scheduleChatList();
      return;
    }
    const marks = (readMarks[chatId] ||= {});
    if ((marks[userId] || 0) >= seq) return;
    marks[userId] = seq;
    saveMarks();
    refreshTicks(chat);
  });

  socket.on('typing', onTyping);

  socket.on('presence', ({ userId, online, lastSeenAt }) => {
    const u = state.users.get(userId);
    if (!u) return;
    u.online = online;
    u.lastSeenAt = lastSeenAt;
    userChanged(userId);
  });

  socket.on('chat:new', (c) => upsertChat(c));
  socket.on('chat:update', (c) => {
    if (!(c.members || []).some((m) => m.userId === state.me.id)) removeChat(c.id);
    else upsertChat(c);
  });
  socket.on('chat:removed', ({ chatId }) => removeChat(chatId));
}

/** Refreshes online dots of direct-chat peers after a (re)connect. */
async function refreshPresence() {
  const ids = [...new Set([...state.chats.values()].map(peerOf).filter(Boolean))];
  if (!ids.length || !state.socket || !state.socket.connected) return;
  try {
    const res = await state.socket.timeout(ACK_TIMEOUT).emitWithAck('presence:get', { userIds: ids });
    if (!res || !res.ok) return;
    for (const p of res.presence) {
      const u = state.users.get(p.userId);
      if (u) {
        u.online = p.online;
        u.lastSeenAt = p.lastSeenAt;
        userChanged(p.userId);
      }
    }
  } catch {
    /* the next presence event will tell */
  }
}

// The browser knows first when the network goes: drop the socket at once
// (instead of waiting for a ping timeout) and reconnect when it is back.
function onOffline() {
  if (!state.socket) return;
  setConn('offline', 'Offline');
  state.socket.disconnect();
}

function onOnline() {
  if (!state.socket || state.revoked) return;
  setConn('reconnecting', 'Reconnecting…');
  if (!state.socket.connected) state.socket.connect();
}

// ---------------------------------------------------------------------------
// Finding people: direct chats and groups

async function searchUsers(q) {
  const { users } = await api('GET', `/api/users?${new URLSearchParams({ q, limit: '10' })}`);
  for (const u of users) if (u.id !== state.me.id) state.users.set(u.id, u);
  return users.filter((u) => u.id !== state.me.id);
}

let searchSeq = 0;
const runSearch = debounce(async () => {
  const q = $('user-search').value.trim();
  const section = $('search-results');
  if (!q) {
    section.hidden = true;
    return;
  }
  const mine = ++searchSeq;
  let users;
  try {
    users = await searchUsers(q);
  } catch (err) {
    if (mine === searchSeq) toast(`Search failed: ${describe(err)}`);
    return;
  }
  if (mine !== searchSeq) return; // a newer query is on its way
  section.hidden = false;
  $('search-empty').hidden = users.length > 0;
  $('search-list').replaceChildren(
    ...users.map((u) =>
      el(
        'li',
        {},
        el(
          'button',
          { type: 'button', className: 'user-item', on: { click: () => startDirect(u) } },
          avatarFor(u.id),
          el('span', { className: 'user-name', text: u.username }),
          u.displayName && u.displayName.toLowerCase() !== u.username ? el('span', { className: 'user-display', text: u.displayName }) : null,
        ),
      ),
    ),
  );
}, 200);

async function startDirect(user) {
  try {
    const c = await api('POST', '/api/chats', { type: 'direct', userId: user.id });
    upsertChat(c);
    $('user-search').value = '';
    $('search-results').hidden = true;
    navigateToChat(c.id);
  } catch (err) {
    toast(`Could not start the chat: ${describe(err)}`);
  }
}

const group = { picked: new Map() }; // userId -> user

function openGroupDialog() {
  group.picked.clear();
  $('group-name').value = '';
  $('group-search').value = '';
  $('group-error').textContent = '';
  $('group-results').replaceChildren();
  renderPicked();
  $('group-dialog').showModal();
  $('group-name').focus();
}

function renderPicked() {
  const list = $('group-picked');
  if (!group.picked.size) {
    list.replaceChildren(el('li', { className: 'none', text: 'Nobody yet: find people above.' }));
    return;
  }
  list.replaceChildren(
    ...[...group.picked.values()].map((u) =>
      el(
        'li',
        { className: 'chip' },
        el('span', { text: u.username }),
        el('button', {
          type: 'button',
          className: 'chip-remove',
          'aria-label': `Remove ${u.username}`,
          text: '×',
          on: {
            click: () => {
              group.picked.delete(u.id);
              renderPicked();
              const box = $('group-results').querySelector(`input[data-user-id="${CSS.escape(u.id)}"]`);
              if (box) box.checked = false;
            },
          },
        }),
      ),
    ),
  );
}

const runGroupSearch = debounce(async () => {
  const q = $('group-search').value.trim();
  if (!q) {
    $('group-results').replaceChildren();
    return;
  }
  let users;
  try {
    users = await searchUsers(q);
  } catch (err) {
    $('group-error').textContent = describe(err);
    return;
  }
  if ($('group-search').value.trim() !== q) return;
  $('group-results').replaceChildren(
    ...users.map((u) => {
      const box = el('input', { type: 'checkbox', dataset: { userId: u.id } });
      box.checked = group.picked.has(u.id);
      box.addEventListener('change', () => {
        if (box.checked) group.picked.set(u.id, u);
        else group.picked.delete(u.id);
        renderPicked();
      });
      return el('li', {}, el('label', { className: 'pick' }, box, avatarFor(u.id, 'small'), el('span', { text: u.username })));
    }),
  );
  if (!users.length) $('group-results').replaceChildren(el('li', { className: 'none', text: 'No users found.' }));
}, 200);

async function onCreateGroup(ev) {
  ev.preventDefault();
  const name = $('group-name').value.trim();
  const error = $('group-error');
  if (!name) {
    error.textContent = 'Give the group a name.';
    $('group-name').focus();
    return;
  }
  if (!group.picked.size) {
    error.textContent = 'Pick at least one member.';
    $('group-search').focus();
    return;
  }
  try {
    const c = await api('POST', '/api/chats', { type: 'group', name, memberIds: [...group.picked.keys()] });
    upsertChat(c);
    $('group-dialog').close();
    navigateToChat(c.id);
  } catch (err) {
    error.textContent = describe(err);
  }
}

// ---------------------------------------------------------------------------
// Wiring

function wireEvents() {
  $('auth-form').addEventListener('submit', onAuthSubmit);
  $('logout').addEventListener('click', logout);
  $('avatar-input').addEventListener('change', onAvatarChosen);
  $('user-search').addEventListener('input', runSearch);
  $('user-search').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      $('user-search').value = '';
      $('search-results').hidden = true;
    }
  });
  $('new-group').addEventListener('click', openGroupDialog);
  $('group-form').addEventListener('submit', onCreateGroup);
  $('group-cancel').addEventListener('click', () => $('group-dialog').close());
  $('group-search').addEventListener('input', runGroupSearch);
  $('back').addEventListener('click', () => {
    location.hash = '';
  });
  $('composer').addEventListener('submit', onSend);
  $('message-input').addEventListener('input', onComposerInput);
  $('message-input').addEventListener('keydown', onComposerKey);
  $('message-input').addEventListener('blur', () => stopTyping());
  $('attach-input').addEventListener('change', onFilesChosen);
  $('scroller').addEventListener('scroll', onScroll, { passive: true });
  $('jump').addEventListener('click', () => {
    scrollToBottom();
    maybeMarkRead();
  });
  window.addEventListener('hashchange', () => route());
  window.addEventListener('offline', onOffline);
  window.addEventListener('online', onOnline);
  document.addEventListener('visibilitychange', () => maybeMarkRead());
  setInterval(() => {
    // Keep relative times ("last seen", list dates) from going stale.
    const chat = openChat();
    if (chat) renderChatSub(chat);
  }, 60000);
}

boot();
