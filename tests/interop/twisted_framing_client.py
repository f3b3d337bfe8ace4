#!/usr/bin/env python3
"""A real Twisted client for torsion's framed echo server.

Usage: twisted_framing_client.py HOST PORT FRAMING

FRAMING is line, netstring, int8, int16 or int32. The client uses Twisted's
own receiver (LineReceiver, NetstringReceiver, Int8/16/32StringReceiver),
sends frames of 0, 1, 100 and MAX_LENGTH bytes one at a time, checks each
echo byte for byte, then (where the prefix can express it) sends a frame one
byte over MAX_LENGTH and expects the server to close the connection without
echoing it. Prints one line per check; exits 0 when every check passed.
"""

import sys

from twisted.internet import protocol, reactor
from twisted.protocols import basic

HOST, PORT, FRAMING = sys.argv[1], int(sys.argv[2]), sys.argv[3]

RECEIVERS = {
    "line": basic.LineReceiver,
    "netstring": basic.NetstringReceiver,
    "int8": basic.Int8StringReceiver,
    "int16": basic.Int16StringReceiver,
    "int32": basic.Int32StringReceiver,
}
PREFIX_MAX = {"int8": 255, "int16": 65535}

base = RECEIVERS[FRAMING]
MAX = min(base.MAX_LENGTH, PREFIX_MAX.get(FRAMING, base.MAX_LENGTH))
SIZES = [0, 1, 100, MAX]
failures = []


def payload(size):
    # Printable, no \r or \n, distinct per size.
    return bytes(0x41 + (i * 7 + size) % 26 for i in range(size))


def overlong_bytes():
    """The wire bytes of a frame one byte over MAX_LENGTH, or None."""
    data = b"x" * (MAX + 1)
    if FRAMING == "line":
        return data + b"\r\n"
    if FRAMING == "netstring":
        return str(len(data)).encode() + b":" + data + b","
    if FRAMING == "int32":
        return len(data).to_bytes(4, "big") + data
    return None  # int8/int16: the prefix cannot announce more than MAX


class Client(base):
    # Let the client receive whatever the server may (wrongly) send back.
    MAX_LENGTH = 10 * MAX + 1000

    def connectionMade(self):
        self.pending = list(SIZES)
        self.closed_by_server = False
        self.sent_overlong = False
        self.next()

    def next(self):
        if self.pending:
            self.expect = payload(self.pending[0])
            self.send(self.expect)
            return
        wire = overlong_bytes()
        if wire is None:
            print(f"{FRAMING}: over-long frame not expressible with this prefix, skipped")
            self.transport.loseConnection()
            return
        self.sent_overlong = True
        self.transport.write(wire)

    def send(self, data):
        if FRAMING == "line":
            self.sendLine(data)
        else:
            self.sendString(data)

    def got(self, data):
        if self.sent_overlong:
            failures.append(f"{FRAMING}: the over-long frame was echoed ({len(data)} bytes)")
            return
        size = self.pending.pop(0)
        if data == self.expect:
            print(f"{FRAMING}: {size}-byte frame echoed intact")
        else:
            failures.append(f"{FRAMING}: {size}-byte frame came back as {len(data)} different bytes")
        self.next()

    def lineReceived(self, line):
        self.got(line)

    def stringReceived(self, string):
        self.got(string)

    def connectionLost(self, reason):
        if self.pending:
            failures.append(f"{FRAMING}: connection lost with {self.pending} still unechoed: {reason.value}")
        elif self.sent_overlong:
            print(f"{FRAMING}: server closed the connection after an over-long frame")
        if reactor.running:
            reactor.stop()


class Factory(protocol.ClientFactory):
    protocol = Client

    def clientConnectionFailed(self, connector, reason):
        failures.append(f"{FRAMING}: connection failed: {reason.value}")
        reactor.stop()


def give_up():
    failures.append(f"{FRAMING}: timed out")
    reactor.stop()


reactor.connectTCP(HOST, PORT, Factory())
reactor.callLater(30, give_up)
reactor.run()

for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
