// A headless model of the piyush-eon/mern-chat-app frontend: the same
// requests (axios, with the headers its components set) and the same
// socket calls (socket.io-client as SingleChat.js uses it), and the state
// its components keep, so a test reads what the user would see.
import axios from 'axios';
import io from 'socket.io-client';

export const ENDPOINT = process.env.PARLEY_URL;
if (!ENDPOINT) throw new Error('PARLEY_URL is not set');
export const TIMEOUT = Number(process.env.PARLEY_WAIT_MS || 5000);

const http = axios.create({ baseURL: ENDPOINT });
const json = { headers: { 'Content-type': 'application/json' } };

export function suffix() {
  return Math.random().toString(36).slice(2, 8);
}

// ChatLogics.getSender: the name shown for a direct chat.
export function getSender(loggedUser, users) {
  return users[0]?._id === loggedUser?._id ? users[1].name : users[0].name;
}

export class App {
  constructor() {
    this.user = null; // localStorage userInfo
    this.chats = [];
    this.selectedChat = null; // selectedChatCompare
    this.messages = [];
    this.notification = [];
    this.isTyping = false;
    this.socketConnected = false;
    this.received = []; // every 'message recieved', for counting
    this.waiters = [];
  }

  auth(extra = {}) {
    return { headers: { Authorization: `Bearer ${this.user.token}`, ...extra } };
  }

  // Signup.js
  async signup(name, email, password) {
    const { data } = await http.post('/api/user', { name, email, password, pic: undefined }, json);
    this.user = data;
    return data;
  }

  // Login.js
  async login(email, password) {
    const { data } = await http.post('/api/user/login', { email, password }, json);
    this.user = data;
    return data;
  }

  // SingleChat.js's first effect: io(ENDPOINT), then setup with the user.
  connect() {
    this.socket = io(ENDPOINT);
    this.socket.emit('setup', this.user);
    this.socket.on('connected', () => {
      this.socketConnected = true;
      this.changed();
    });
    this.socket.on('typing', () => {
      this.isTyping = true;
      this.changed();
    });
    this.socket.on('stop typing', () => {
      this.isTyping = false;
      this.changed();
    });
    this.socket.on('message recieved', (m) => {
      this.received.push(m);
      if (!this.selectedChat || this.selectedChat._id !== m.chat._id) {
        if (!this.notification.includes(m)) this.notification = [m, ...this.notification];
      } else {
        this.messages = [...this.messages, m];
      }
      this.changed();
    });
    return this.until(() => this.socketConnected, 'connected');
  }

  close() {
    this.socket?.close();
  }

  // SideDrawer.js / GroupChatModal.js
  async search(q) {
    const { data } = await http.get(`/api/user?search=${q}`, this.auth());
    return data;
  }

  // SideDrawer.accessChat
  async accessChat(userId) {
    const { data } = await http.post('/api/chat', { userId }, this.auth({ 'Content-type': 'application/json' }));
    if (!this.chats.find((c) => c._id === data._id)) this.chats = [data, ...this.chats];
    await this.select(data);
    return data;
  }

  // MyChats.fetchChats
  async fetchChats() {
    const { data } = await http.get('/api/chat', this.auth());
    this.chats = data;
    return data;
  }

  // Clicking a chat: SingleChat.fetchMessages, then join chat.
  async select(chat) {
    this.selectedChat = chat;
    const { data } = await http.get(`/api/message/${chat._id}`, this.auth());
    this.messages = data;
    this.socket.emit('join chat', chat._id);
    return data;
  }

  // settled resolves once the server has handled this socket's earlier
  // 'join chat' events. Not the app's: a test's barrier, so that another
  // user's typing is not sent before the join it is meant to meet (a real
  // user types long after opening a chat). Parley handles 'join chat' on
  // the same ordered lane as chat:history, which acks.
  settled() {
    return new Promise((resolve) => {
      this.socket.emit('chat:history', { chatId: this.selectedChat._id, limit: 1 }, () => resolve());
    });
  }

  // SingleChat.typingHandler
  type() {
    if (this.socketConnected) this.socket.emit('typing', this.selectedChat._id);
  }

  stopTyping() {
    this.socket.emit('stop typing', this.selectedChat._id);
  }

  // SingleChat.sendMessage (Enter)
  async send(content) {
    this.socket.emit('stop typing', this.selectedChat._id);
    const { data } = await http.post(
      '/api/message',
      { content, chatId: this.selectedChat },
      this.auth({ 'Content-type': 'application/json' }),
    );
    this.socket.emit('new message', data);
    this.messages = [...this.messages, data];
    return data;
  }

  // GroupChatModal.handleSubmit
  async createGroup(name, users) {
    const { data } = await http.post(
      '/api/chat/group',
      { name, users: JSON.stringify(users.map((u) => u._id)) },
      this.auth(),
    );
    this.chats = [data, ...this.chats];
    return data;
  }

  // UpdateGroupChatModal
  async rename(chatName) {
    const { data } = await http.put('/api/chat/rename', { chatId: this.selectedChat._id, chatName }, this.auth());
    this.selectedChat = data;
    return data;
  }

  async addUser(user1) {
    const { data } = await http.put('/api/chat/groupadd', { chatId: this.selectedChat._id, userId: user1._id }, this.auth());
    this.selectedChat = data;
    return data;
  }

  async removeUser(user1) {
    const { data } = await http.put(
      '/api/chat/groupremove',
      { chatId: this.selectedChat._id, userId: user1._id },
      this.auth(),
    );
    this.selectedChat = user1._id === this.user._id ? null : data;
    return data;
  }

  changed() {
    for (const w of [...this.waiters]) {
      if (w.cond()) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        clearTimeout(w.timer);
        w.resolve();
      }
    }
  }

  // until resolves once cond holds: the state the user would see.
  until(cond, what) {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { cond, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out after ${TIMEOUT}ms waiting for ${what}`));
      }, TIMEOUT);
      this.waiters.push(w);
    });
  }
}
