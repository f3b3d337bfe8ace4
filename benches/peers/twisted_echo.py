#!/usr/bin/env python3
"""Twisted's docs echo server (Echo protocol) on the epoll reactor, for the
benchmark suite. Listens on 127.0.0.1:0 and prints the port."""

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402


class Echo(Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class EchoFactory(Factory):
    def buildProtocol(self, addr):
        return Echo()


port = reactor.listenTCP(0, EchoFactory(), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
