"""Who may talk to the demo page's server: Host and Origin checks and the page's request header.

A server on 127.0.0.1 is reachable from every web page the user's browser opens, so it defends
against two attacks, for every route (static files included):

- DNS rebinding: a page of attacker.example whose name later resolves to 127.0.0.1 sends
  requests whose Host header is ``attacker.example:PORT``. A request whose Host is not one of
  the served addresses (:func:`allowed_hosts`) is refused with 421 Misdirected Request.
- Cross-site requests: any page may send a "simple" POST (a ``no-cors`` fetch, a form) to
  ``http://127.0.0.1:PORT/`` without asking. Every request but GET, HEAD and OPTIONS must carry
  the header :data:`REQUEST_HEADER` ``: 1``, which a script of another origin can only send after
  a CORS preflight that this server never grants, and must not come with a foreign ``Origin``
  (403).

Refusals answer JSON ``{"error": message}`` and are logged as one warning line.
"""

import json
import logging
import socket
from typing import FrozenSet, Iterable, Optional

__all__ = ["REQUEST_HEADER", "LOOPBACK_NAMES", "allowed_hosts", "RequestGuard"]

logger = logging.getLogger(__name__)

REQUEST_HEADER = "X-Alphafree-Request"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
_WILDCARDS = ("0.0.0.0", "::", "")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _as_host_name(host: str) -> str:
    """'::1' -> '[::1]' (as in a Host header), names in lower case."""
    host = host.strip().lower().rstrip(".")
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def _machine_names() -> set:
    """This machine's name, full name and addresses (for a server listening on every address)."""
    names = set()
    try:
        hostname = socket.gethostname()
        names.update((hostname, socket.getfqdn()))
        for info in socket.getaddrinfo(hostname, None):
            names.add(info[4][0])
    except OSError:  # no resolvable name: the loopback names and --allow-host remain
        pass
    return {_as_host_name(n) for n in names if n}


def allowed_hosts(host: str, port: Optional[int], extra: Iterable[str] = ()) -> FrozenSet[str]:
    """The Host header values of a server listening on ``host:port``.

    The loopback names (127.0.0.1, localhost, [::1]) always, ``host`` itself, and for a wildcard
    address (0.0.0.0, ::) this machine's name and addresses too; ``extra`` adds names (a DNS name of
    the machine, a reverse proxy's). Each with ``:port``; bare too when ``port`` is 80 (browsers
    leave out the default port). ``port=None`` accepts any port (for tests and embedding).
    """
    names = set(LOOPBACK_NAMES)
    if host in _WILDCARDS:
        names |= _machine_names()
    if host:
        names.add(_as_host_name(host))  # also 0.0.0.0, which browsers open as this machine
    names |= {_as_host_name(name) for name in extra if name.strip()}
    if port is None:
        return frozenset(names)
    hosts = {f"{name}:{int(port)}" for name in names}
    if int(port) == 80:
        hosts |= names
    return frozenset(hosts)


def _host_matches(value: str, allowed: FrozenSet[str], any_port: bool) -> bool:
    value = value.strip().lower()
    if value in allowed:
        return True
    if any_port:
        name, sep, port = value.rpartition(":")
        if sep and port.isdigit() and not name.endswith(":"):
            return name.rstrip(".") in allowed
        return _as_host_name(value) in allowed
    return False


class RequestGuard:
    """ASGI middleware: refuses requests whose Host is not served, and state-changing requests
    without :data:`REQUEST_HEADER` or with a foreign Origin (module docstring).

    Args:
        app: the ASGI application to protect.
        hosts: accepted Host values, e.g. from :func:`allowed_hosts`.
        any_port: ``hosts`` are names without ports, and any port is accepted.
    """

    def __init__(self, app, hosts: Iterable[str], *, any_port: bool = False):
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)
        self.any_port = any_port

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.check(scope["method"], _headers(scope))
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, message = problem
        logger.warning("refused %s %s: %s", scope["method"], scope.get("path", ""), message)
        body = json.dumps({"error": message}).encode("utf-8")
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def check(self, method: str, headers: dict):
        """None when the request may pass, else (status, message). ``headers``: lower-case
        name -> list of values."""
        hosts, origins = headers.get("host", []), headers.get("origin", [])
        if len(hosts) > 1 or len(origins) > 1:
            return 400, "a request with several Host or Origin headers is refused"
        host = hosts[0] if hosts else None
        if host is None or not _host_matches(host, self.hosts, self.any_port):
            shown = "no Host header" if host is None else f"Host {host!r}"
            return (
                421,
                f"{shown} is not an address of this page (it answers to "
                f"{', '.join(sorted(self.hosts))}); refused, as a page of another site could "
                "reach it through DNS rebinding. Open the address tools/demo_app.py printed, or "
                "start it with --allow-host NAME",
            )
        if method.upper() in _SAFE_METHODS:
            return None
        if origins:
            origin = origins[0]
            scheme, sep, origin_host = origin.strip().lower().partition("://")
            if not (
                sep and scheme == "http" and _host_matches(origin_host, self.hosts, self.any_port)
            ):
                return (
                    403,
                    f"cross-site request refused: Origin {origin!r} is not this page; only the "
                    "page itself may send requests that run the models",
                )
        if headers.get(REQUEST_HEADER.lower(), [None])[-1] != "1":
            return (
                403,
                f"request refused: {method} needs the header {REQUEST_HEADER}: 1, which the "
                "page's own script sends (add it when calling the API from a script)",
            )
        return None


def _headers(scope) -> dict:
    """Lower-case header name -> list of its values (latin-1, as HTTP/1.1 defines)."""
    headers = {}
    for name, value in scope.get("headers", []):
        headers.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return headers
