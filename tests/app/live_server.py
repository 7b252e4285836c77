"""An application served by uvicorn in a thread of the test process, on a port the OS chose, for
browser tests whose models the test controls (a predictor that blocks, one that returns NaN)."""

import threading

from alphafree_d2.app import allowed_hosts, bind_socket, url_of


class LiveServer:
    """``make_app(allowed_hosts)`` served on 127.0.0.1; ``url``; :meth:`close` stops it."""

    def __init__(self, make_app):
        import uvicorn

        # The socket listens before uvicorn runs: a browser that connects first waits in the
        # backlog, so there is nothing to wait for here.
        self.sock = bind_socket("127.0.0.1", 0)
        self.url = url_of(self.sock)
        self.app = make_app(allowed_hosts("127.0.0.1", self.sock.getsockname()[1]))
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=60)
        self.sock.close()
