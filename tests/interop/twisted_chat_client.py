#!/usr/bin/env python3
"""Two Twisted LineReceiver clients chat through torsion's chat server.

Usage: twisted_chat_client.py HOST PORT

Prints one line per check; exits 0 when the whole conversation went as the
chat server's documented transcript says.
"""

import sys

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

HOST, PORT = sys.argv[1], int(sys.argv[2])
failures = []


class ChatLine(LineReceiver):
    delimiter = b"\r\n"

    def __init__(self):
        self.lines = defer.DeferredQueue()
        self.lost = defer.Deferred()

    def lineReceived(self, line):
        self.lines.put(line.decode("utf-8"))

    def connectionLost(self, reason):
        if not self.lost.called:
            self.lost.callback(None)


def expect(got, want, who):
    if got == want:
        print(f"{who}: got {got!r}")
    else:
        failures.append(f"{who}: expected {want!r}, got {got!r}")


@defer.inlineCallbacks
def main():
    endpoint = TCP4ClientEndpoint(reactor, HOST, PORT)
    alice = yield connectProtocol(endpoint, ChatLine())
    bob = yield connectProtocol(endpoint, ChatLine())
    expect((yield alice.lines.get()), "What's your name?", "alice")
    expect((yield bob.lines.get()), "What's your name?", "bob")
    # (who sends, the line, who reads, what they must read)
    conversation = [
        (alice, b"alice", alice, "Welcome, alice!"),
        (bob, b"alice", bob, "Name taken, please choose another."),
        (bob, b"bob", bob, "Welcome, bob!"),
        (alice, "hello from Twisted, ünïcode".encode("utf-8"), bob,
         "<alice> hello from Twisted, ünïcode"),
        (bob, b"/who", bob, "Users: alice bob"),
        (bob, b"/me waves", alice, "* bob waves"),
    ]
    names = {id(alice): "alice", id(bob): "bob"}
    for sender, line, reader, want in conversation:
        sender.sendLine(line)
        expect((yield reader.lines.get()), want, names[id(reader)])
    alice.sendLine(b"/quit")
    yield alice.lost
    print("alice: connection closed after /quit")
    bob.transport.loseConnection()
    yield bob.lost


def done(result):
    if isinstance(result, Exception) or hasattr(result, "getErrorMessage"):
        failures.append(f"error: {result}")
    if reactor.running:
        reactor.stop()


def give_up():
    failures.append("timed out")
    if reactor.running:
        reactor.stop()


reactor.callWhenRunning(lambda: main().addBoth(done))
reactor.callLater(30, give_up)
reactor.run()
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
