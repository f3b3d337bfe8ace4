#!/usr/bin/env python3
"""A chat server on Autobahn|Python over Twisted (epoll reactor, compression
off) with torsion's chat semantics, for the WebSocket chat benchmark: the
first message after "What's your name?" is the name, every later message
goes to every other named client as "<name> message". Listens on
127.0.0.1:PORT (argv[1], 0 = any) and prints the port it got on stdout."""

import sys

from twisted.internet import epollreactor

epollreactor.install()

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol  # noqa: E402
from twisted.internet import reactor  # noqa: E402

USERS = {}


class Chat(WebSocketServerProtocol):
    name = None

    def onOpen(self):
        self.sendMessage(b"What's your name?", isBinary=False)

    def onMessage(self, payload, isBinary):
        text = payload.decode("utf-8")
        if self.name is None:
            if text in USERS:
                self.sendMessage(b"Name taken, please choose another.", isBinary=False)
                return
            self.name = text
            USERS[text] = self
            self.sendMessage(f"Welcome, {text}!".encode("utf-8"), isBinary=False)
            return
        line = f"<{self.name}> {text}".encode("utf-8")
        for other, peer in USERS.items():
            if other != self.name:
                peer.sendMessage(line, isBinary=False)

    def onClose(self, wasClean, code, reason):
        if self.name is not None and USERS.get(self.name) is self:
            del USERS[self.name]


factory = WebSocketServerFactory()
factory.protocol = Chat
factory.setProtocolOptions(perMessageCompressionAccept=lambda offers: None)
port = reactor.listenTCP(int(sys.argv[1]) if len(sys.argv) > 1 else 0, factory, interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
