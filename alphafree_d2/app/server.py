"""Serving the demo page: a socket bound first (port 0 = any free port, no race), the address
printed, uvicorn until Ctrl+C / SIGTERM, then a clean stop."""

import signal
import socket
import sys
import threading

__all__ = ["serve", "bind_socket", "url_of"]


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on ``host:port``; port 0 lets the OS choose a free port (read it
    back with ``sock.getsockname()[1]``).

    Raises:
        OSError: the port is taken or the host is not an address of this machine; the message
            says which.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=64)
    except OSError as e:
        raise OSError(
            e.errno,
            f"cannot listen on {host}:{port} ({e.strerror}); choose another --port "
            f"(0 = any free port) or --host",
        ) from None


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def serve(app, sock: socket.socket, *, log_level: str = "warning", announce=print) -> None:
    """Serve ``app`` on the bound ``sock`` until interrupted (SIGINT or SIGTERM), then close
    every connection and return. ``announce(message)`` is told the page's address, and when the
    server has stopped."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=5))
    # The socket listens already: a browser that connects before uvicorn's loop starts waits in
    # the backlog, so the address can be announced now.
    announce(f"demo page on {url_of(sock)} (Ctrl+C to stop)")
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None
    try:
        # uvicorn handles SIGINT/SIGTERM itself (graceful shutdown) and raises the signal
        # again afterwards: with the handlers above, as KeyboardInterrupt.
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        sock.close()
    announce("demo page stopped")
    sys.stdout.flush()
