"""``hpclab site serve``: the built site over HTTP on this machine (the run and Training
pages read their data with ``fetch``, which browsers refuse on ``file://``).

A static file server from the standard library, bound to 127.0.0.1 by default; the data
files are sent with ``Cache-Control: no-store`` so a polling page sees every update, and
every file with ``X-Content-Type-Options: nosniff`` (a JSON data file is never read as a
page) and ``frame-ancestors 'self'`` (the one CSP rule a ``<meta>`` cannot set). Any
other static server (a lab web server, ``python -m http.server``) serves the same files.
"""

from __future__ import annotations

import errno
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hpclab.errors import SiteError


class _Handler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        if self.path.startswith("/data/") or self.path.endswith(".html"):
            self.send_header("Cache-Control", "no-store")
        # a data file is never sniffed into HTML; no page of the site is framed elsewhere
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "frame-ancestors 'self'")
        self.send_header("Referrer-Policy", "no-referrer")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # one line per request would drown the terminal while pages poll

    def copyfile(self, source: Any, outputfile: Any) -> None:
        try:
            super().copyfile(source, outputfile)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser navigated away mid-file


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(directory: Path, host: str = "127.0.0.1", port: int = 8000) -> ThreadingHTTPServer:
    """A server for ``directory`` (not started); ``port=0`` picks a free port."""
    if not (Path(directory) / "index.html").is_file():
        raise SiteError(f"no site built in {directory}: run hpclab site build first")
    handler = functools.partial(_Handler, directory=str(directory))
    try:
        return _Server((host, port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise SiteError(f"port {port} on {host} is in use: pick another with --port") from None
        raise SiteError(f"cannot listen on {host}:{port} ({e.strerror})") from None


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else str(host)
    return f"http://{host}:{port}/"


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, name="hpclab-site", daemon=True)
    t.start()
    return t
