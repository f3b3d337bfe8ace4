#!/usr/bin/env python3
"""Twisted's docs chat server (docs/core/howto/servers.rst, chat.py), on the
epoll reactor, for torsion's chat benchmark. Listens on 127.0.0.1:PORT
(argv[1], 0 = any) and prints the port it got on stdout. With `nodelay` as
argv[2], each connection sets TCP_NODELAY (Twisted leaves Nagle's algorithm
on by default, which puts tens of milliseconds into its latency tail)."""

import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory  # noqa: E402
from twisted.protocols.basic import LineReceiver  # noqa: E402

NODELAY = len(sys.argv) > 2 and sys.argv[2] == "nodelay"


class Chat(LineReceiver):
    def __init__(self, users):
        self.users = users
        self.name = None
        self.state = "GETNAME"

    def connectionMade(self):
        if NODELAY:
            self.transport.setTcpNoDelay(True)
        self.sendLine(b"What's your name?")

    def connectionLost(self, reason):
        if self.name in self.users:
            del self.users[self.name]

    def lineReceived(self, line):
        if self.state == "GETNAME":
            self.handle_GETNAME(line.decode("utf-8"))
        else:
            self.handle_CHAT(line.decode("utf-8"))

    def handle_GETNAME(self, name):
        if name in self.users:
            self.sendLine(b"Name taken, please choose another.")
            return
        self.sendLine(f"Welcome, {name}!".encode("utf-8"))
        self.name = name
        self.users[name] = self
        self.state = "CHAT"

    def handle_CHAT(self, message):
        message = f"<{self.name}> {message}"
        for name, protocol in self.users.items():
            if protocol != self:
                protocol.sendLine(message.encode("utf-8"))


class ChatFactory(Factory):
    def __init__(self):
        self.users = {}

    def buildProtocol(self, addr):
        return Chat(self.users)


port = reactor.listenTCP(int(sys.argv[1]), ChatFactory(), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
