"""`python -m claus.annotation.serve FOLDER [--port 8081] [--host 127.0.0.1]`: serve exported
videos to an annotation tool in the browser.

A page of Label Studio (or any tool) at one address plays a video from another, so the video
server must allow it (`Access-Control-Allow-Origin`), and video players fetch byte ranges
(`Range: bytes=a-b` → 206 Partial Content) to start and to seek. `python -m http.server` does
neither; this server does both, for the files under FOLDER only, read-only. It is meant for the
annotator's own machine (default address 127.0.0.1), not for the open internet.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["RangeHandler", "main", "make_server"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class _Slice:
    """`length` bytes of an open file from its current position (what `copyfile` reads)."""

    def __init__(self, f, length: int):
        self.f, self.left = f, length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.f.read(n) if n else b""
        self.left -= len(data)
        return data

    def close(self) -> None:
        self.f.close()


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with CORS headers and single byte ranges."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers",
                         "Accept-Ranges, Content-Length, Content-Range")
        super().end_headers()

    def do_OPTIONS(self) -> None:  # noqa: N802  (the http.server naming)
        self.send_response(HTTPStatus.NO_CONTENT)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Range")
        self.end_headers()

    def send_head(self):
        path = self.translate_path(self.path)
        m = _RANGE.fullmatch((self.headers.get("Range") or "").strip())
        if os.path.isdir(path) or m is None or not (m[1] or m[2]):
            return super().send_head()
        try:
            f = open(path, "rb")  # noqa: SIM115  (closed by the caller, as in http.server)
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        size = os.fstat(f.fileno()).st_size
        if m[1]:
            a, b = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
        else:  # the last N bytes
            a, b = max(0, size - int(m[2])), size - 1
        if a >= size or a > b:
            f.close()
            self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        self.send_response(HTTPStatus.PARTIAL_CONTENT)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
        self.send_header("Content-Length", str(b - a + 1))
        self.end_headers()
        f.seek(a)
        return _Slice(f, b - a + 1)


def make_server(folder: str | os.PathLike, host: str = "127.0.0.1",
                port: int = 8081) -> ThreadingHTTPServer:
    """A server for `folder` (not started: call `serve_forever`, `shutdown` to stop); port 0
    picks a free one (`server.server_address`)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder; give the folder of the videos "
                                 "(claus.export --encode writes RUN/videos)")
    return ThreadingHTTPServer((host, port), partial(RangeHandler, directory=str(folder)))


def build_parser() -> argparse.ArgumentParser:
    from ..cli import Parser

    p = Parser(prog="python -m claus.annotation.serve", description=__doc__,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="the folder to serve (e.g. RUN/videos)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8081, help="port to listen on")
    return p


def main(argv: list[str] | None = None) -> int:
    from ..cli import run_command

    a = build_parser().parse_args(argv)

    def body() -> int:
        try:
            server = make_server(a.folder, a.host, a.port)
        except (NotADirectoryError, FileNotFoundError):
            raise
        except OSError as exc:  # port in use, unknown host: the user picks another
            raise ValueError(f"--host {a.host} --port {a.port}: cannot listen there "
                             f"({exc.strerror or exc}); pick another --port or --host") from None
        host, port = server.server_address[:2]
        print(f"serving {Path(a.folder).resolve()} at http://{host}:{port}/ (CORS, byte "
              "ranges); Ctrl-C stops", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0

    return run_command(body)


if __name__ == "__main__":
    sys.exit(main())
