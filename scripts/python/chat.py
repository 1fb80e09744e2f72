#!/usr/bin/python3
"""Parley with python-socketio (Debian's python3-socketio), one-argument handlers.

Logs in two users (PARLEY_URL, PARLEY_A_LOGIN, PARLEY_B_LOGIN, PARLEY_PASSWORD),
connects both over Socket.IO with the token in the handshake auth, has A send
a message to their chat (PARLEY_CHAT) and waits for B's message:new. Every
handler takes exactly one argument: if the server appended anything to an
event (a recovery offset), python-socketio would raise TypeError in it and the
event would never be seen. Prints one JSON line and exits 0 on success.
"""
import json
import os
import sys
import logging
import threading
import uuid

import requests
import socketio

URL = os.environ["PARLEY_URL"]
CHAT = os.environ["PARLEY_CHAT"]
PASSWORD = os.environ["PARLEY_PASSWORD"]
TRANSPORTS = os.environ.get("PARLEY_TRANSPORTS", "websocket,polling").split(",")
TIMEOUT = float(os.environ.get("PARLEY_WAIT_S", "10"))
if os.environ.get("PARLEY_DEBUG"):
    logging.basicConfig(level=logging.DEBUG)


def fail(what):
    print(json.dumps({"ok": False, "error": what}), flush=True)
    sys.stderr.flush()
    os._exit(1)  # the clients' threads would keep the interpreter alive


def login(name):
    r = requests.post(URL + "/api/auth/login", json={"login": name, "password": PASSWORD}, timeout=TIMEOUT)
    if r.status_code != 200:
        fail("login %s: %d %s" % (name, r.status_code, r.text))
    return r.json()["token"]


def client(token):
    debug = bool(os.environ.get("PARLEY_DEBUG"))
    sio = socketio.Client(reconnection=False, logger=debug, engineio_logger=debug)
    errors = []

    @sio.on("connect_error")
    def on_connect_error(data):
        errors.append(data)

    sio.connect(URL, auth={"token": token}, transports=TRANSPORTS, socketio_path="socket.io", wait_timeout=TIMEOUT)
    if not sio.connected:
        fail("connect: %r" % errors)
    return sio


token_a = login(os.environ["PARLEY_A_LOGIN"])
token_b = login(os.environ["PARLEY_B_LOGIN"])

b = client(token_b)
got = {}
received = threading.Event()
presence_seen = threading.Event()


@b.on("message:new")
def on_message_new(message):
    got["message"] = message
    received.set()


@b.on("presence")
def on_presence(update):
    got.setdefault("presence", update)  # A coming online; its going offline may follow
    presence_seen.set()


a = client(token_a)
if not presence_seen.wait(TIMEOUT):
    fail("B never heard that A came online")

acked = threading.Event()


def on_ack(answer):
    got["ack"] = answer
    acked.set()


a.emit("message:send", {"chatId": CHAT, "text": "hello from python", "clientMsgId": "py-" + uuid.uuid4().hex}, callback=on_ack)
if not acked.wait(TIMEOUT):
    fail("message:send was never acknowledged")
if not got["ack"].get("ok"):
    fail("message:send answered %r" % got["ack"])
if not received.wait(TIMEOUT):
    fail("B never got message:new")
if got["message"] != got["ack"]["message"]:
    fail("B got %r, A's ack said %r" % (got["message"], got["ack"]["message"]))

a.disconnect()
b.disconnect()
print(json.dumps({"ok": True, "message": got["message"], "presence": got["presence"]}), flush=True)
