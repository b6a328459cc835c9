"""`jaxrap tui --serve`: the same studio in a browser, through textual-serve.

textual-serve is a small web server: each browser tab that opens the page starts its own
``jaxrap tui`` process (the model loads once per tab) and talks to it over a websocket; the page
draws the terminal with xterm.js. There is no login and no encryption, so the server listens on
the loopback address unless another is asked for, and then says who can reach it. The host must
be an IP address (or "localhost"), and the port free, before anything starts: both are checked
here and refused with one line.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jaxrap.errors import JaxrapError

if TYPE_CHECKING:
    from aiohttp import web

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8000
TITLE = "jaxrap studio"


def check_host(host: str) -> str:
    """``--host``: an IP address ("localhost" reads as 127.0.0.1); a one-line JaxrapError otherwise."""
    if host == "localhost":
        return LOOPBACK
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise JaxrapError(
            f"--host {host!r} is not an IP address: give one of this machine's addresses, e.g. {LOOPBACK}"
            " (this machine only, the default) or 0.0.0.0 (every network it is on)"
        ) from None


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise JaxrapError(f"--port {port} is not a port: give a number in 1-65535, e.g. {DEFAULT_PORT}")
    return port


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def exposure_warning(host: str, port: int) -> str | None:
    """What serving on a non-loopback ``host`` exposes, or None for the loopback."""
    if is_loopback(host):
        return None
    return (
        f"serving on {host} port {port}: anyone who can reach this port can use the model, load any model"
        " this machine can read, and read and write the studio's history and verses; there is no password and"
        " no encryption. Serve on a network you trust, or keep the default 127.0.0.1 and use an SSH tunnel"
    )


def check_free(host: str, port: int) -> None:
    """Bind ``host``:``port`` for a moment, as the server will; a one-line JaxrapError saying why
    it cannot (the port in use, an address of another machine, a port that needs root)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: a closing socket is no obstacle
        try:
            probe.bind((host, port))
        except OSError as error:
            raise bind_error(host, port, error) from None


def bind_error(host: str, port: int, error: OSError) -> JaxrapError:
    if error.errno == errno.EADDRINUSE:
        return JaxrapError(f"port {port} is in use on {host}: another program listens there; pick another with --port")
    if error.errno == errno.EADDRNOTAVAIL:
        return JaxrapError(f"--host {host} is not an address of this machine; give one of its own, e.g. {LOOPBACK}")
    if error.errno == errno.EACCES:
        return JaxrapError(f"port {port} needs administrator rights on this system; pick one above 1023 with --port")
    return JaxrapError(f"cannot listen on {host} port {port}: {error.strerror}")


def app_command(argv: Sequence[str]) -> str:
    """The shell command each browser tab runs: this Python, ``-m jaxrap tui`` and ``argv``."""
    import shlex

    return shlex.join([sys.executable, "-m", "jaxrap", "tui", *argv])


def serve(command: str, host: str, port: int) -> None:
    """Serve ``command`` (``app_command``) on ``host``:``port`` until Ctrl+C."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise JaxrapError("--serve needs the textual-serve package: pip install textual-serve") from None

    class StudioServer(Server):
        async def handle_index(self, request: web.Request) -> Any:
            # The page's websocket goes back to the address the browser used (served on 0.0.0.0,
            # the page is reached through the machine's own address). No await comes between
            # this and the page's rendering, so requests never see each other's address.
            self.public_url = str(request.url.origin())
            return await super().handle_index(request)

        async def on_startup(self, app: web.Application) -> None:
            shown = f"[{host}]" if ":" in host else host
            print(f"jaxrap: serving the studio on http://{shown}:{port} (Ctrl+C stops)", file=sys.stderr, flush=True)

    try:
        StudioServer(command, host=host, port=port, title=TITLE).serve()
    except OSError as error:  # taken between the check and the server's own bind
        raise bind_error(host, port, error) from None
