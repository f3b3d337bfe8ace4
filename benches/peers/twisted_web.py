"""Peer for the HTTP bench: Twisted's web server (twisted.web.server.Site on
the epoll reactor) answering GET /plaintext with "Hello, World!" (the
TechEmpower plaintext test). Listens on 127.0.0.1:0 and prints the port."""

import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402
from twisted.web import resource, server  # noqa: E402


class Plaintext(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/plain")
        request.setHeader(b"server", b"twisted")
        return b"Hello, World!"


root = resource.Resource()
root.putChild(b"plaintext", Plaintext())
site = server.Site(root)
site.displayTracebacks = False
port = reactor.listenTCP(0, site, interface="127.0.0.1", backlog=1024)
print(port.getHost().port, flush=True)
sys.stdout.flush()
reactor.run()
