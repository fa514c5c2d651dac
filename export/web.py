"""Serve the in-browser demo: draw or drop a digit, onnxruntime-web classifies it on the device.

    npm ci                                        # once: onnxruntime-web, pinned by package-lock.json
    python -m export.web                          # http://127.0.0.1:8000/ for artifacts/mnist.onnx (+ .int8.onnx)
    python -m export.web --model other.onnx --port 8080
    python -m export.web --host 0.0.0.0           # a phone on the same network opens http://THIS-MACHINE:8000/
    python -m export.web --host ::                # the same over IPv6 and IPv4 (one dual-stack socket)
    python -m export.web --host 0.0.0.0 --https   # the same over TLS: a phone's browser gives the page its camera
    python -m export.web --out site/              # a static site for any static host:
    python -m http.server -d site/                #   ... e.g. this one, then open http://127.0.0.1:8000/

--https serves over TLS with a self-signed certificate, made on first use with the openssl command and
kept (~/.cache/mnist-web, or --cert-dir), and prints its SHA-256 fingerprint: browsers give a page the
camera only in a secure context (https, or http on localhost), and a phone can compare the fingerprint
with the one it shows before it accepts the certificate. See export/tls.py.

The server only hands out files; inference runs in the browser (WebAssembly, one thread, so no
cross-origin isolation headers are needed). The page cannot work from file:// (browsers block
fetching the model and the .wasm there): serve it. Each URL maps to one file of a fixed list, the
same list that --out writes: the site's own files in web/ (by type: .html, .js, .css, ...; never a
dotfile or an editor's backup, swap or lock file), three onnxruntime-web files, the model, its INT8
copy, its sidecar JSON and the line model beside it (mnist.lines.onnx: the page reads a number's lines
whole with it, as predict.py does). The sidecar is served (and written) with the `checkpoint` path reduced
to the file name, and any other absolute path likewise, so the site shows nothing of this
machine's folders; the sidecar on disk is left as the export wrote it.

Since --host 0.0.0.0 puts the server on a network: a client must send its request within
--timeout seconds (20 by default) and take each 64 KiB of a response within as long, or its
connection is closed, so idle or slow clients cannot hold the server's threads; every response
carries `X-Content-Type-Options: nosniff`; failed requests are logged one line each, with control
characters escaped (`\\x1b`) as the standard library does, so no client can write terminal escape
codes to the console.

--out FOLDER never deletes a file it did not write, and never leaves a half-written site:
  - the new site is built in a temporary folder beside FOLDER (.FOLDER.new-*, same filesystem)
    and renamed into place only when complete; on any error that folder is removed and FOLDER is
    left exactly as it was;
  - FOLDER may be missing, an empty folder, or a site that this command wrote before (its
    models.json lists every file it wrote): then it is replaced as a whole, the files it lists
    are deleted, and the model may lie inside it (`--model site/models/mnist.onnx --out site`
    rebuilds the site from its own model);
  - any other FOLDER (a file, or a folder holding anything else: your own files, a .git, a site
    written by an older version of this command) is refused in one line, and nothing is written:
    pick another --out, or empty the folder yourself.
"""

from __future__ import annotations

import argparse
import errno
import http.server
import json
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from export import tls

REPO = Path(__file__).resolve().parent.parent
WEB = REPO / "web"
ORT_DIST = REPO / "node_modules" / "onnxruntime-web" / "dist"
# What the page loads of onnxruntime-web's 148 MB: the wasm-only ES module build and its runtime.
ORT_FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",  # ES modules are refused under any other type
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",  # needed for streaming compilation
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
FILE_NOTE = "file:// cannot work (browsers block fetching the model and the .wasm from a file page): serve the page over http"
TIMEOUT = 20.0  # seconds: default of --timeout
MANIFEST = "models.json"
SITE_README = "README.txt"  # web/README.txt: how to serve the site, the one .txt file served and written
# The standard library's escaping of what a client sent before it goes to the console (as http.server's
# log_message does): C0 and C1 control characters as \xNN, and the backslash doubled so nothing is ambiguous.
CONTROL = str.maketrans({c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {ord("\\"): "\\\\"})


class WebError(Exception):
    """A user error: str() is the one-line reason."""


class Scrubbed:
    """A sidecar JSON, read when served or written, with every path of this machine reduced to a file name."""

    def __init__(self, path: Path):
        self.path = path

    def read(self) -> bytes:
        return (json.dumps(scrub(json.loads(self.path.read_bytes())), indent=2) + "\n").encode()


def scrub(value, key: str = ""):
    """`value` with the `checkpoint` path, and any other absolute path, reduced to its last part."""
    if isinstance(value, dict):
        return {k: scrub(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and (key == "checkpoint" or looks_absolute(value)):
        return re.split(r"[\\/]", value.rstrip("\\/"))[-1]
    return value


def looks_absolute(text: str) -> bool:
    """A POSIX or Windows absolute path, or one under ~ (on any machine, not only this one)."""
    return bool(re.match(r"(/|~[/\\]|[A-Za-z]:[\\/]|\\\\)", text))


def ort_version() -> str:
    try:
        return json.loads((ORT_DIST.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def web_files(web: Path) -> dict[str, Path]:
    """The site's own files in `web`: known types only, no dotfiles, no editor backups or lock files."""
    files = {}
    for path in sorted(web.rglob("*")):
        rel = path.relative_to(web)
        if any(part.startswith((".", "#", "~")) for part in rel.parts):
            continue  # .foo, .app.js.swp, .#app.js (emacs lock), #app.js# (emacs autosave), dot folders
        if path.suffix not in TYPES or not path.is_file():
            continue  # app.js~, app.js.orig, *.swp, *.bak, ...: only the site's types
        if path.suffix == ".txt" and rel.as_posix() != SITE_README:
            continue  # notes.txt, todo.txt: text files are notes, but for the site's README
        if path.is_symlink() and not path.resolve().is_relative_to(web.resolve()):
            continue  # nothing from outside web/
        files[rel.as_posix()] = path
    return files


def site_files(model: Path, web: Path | None = None) -> dict[str, Path | bytes | Scrubbed]:
    """URL path (relative, no leading slash) -> the file, bytes or scrubbed sidecar to serve there: the whole site."""
    if not model.is_file():
        raise WebError(f"model {model} not found (or not a file): export one with `python -m export --int8`, or pass --model PATH")
    missing = [name for name in ORT_FILES if not (ORT_DIST / name).is_file()]
    if missing:
        raise WebError(f"onnxruntime-web is not installed ({ORT_DIST / missing[0]} is missing): run `npm ci` in {REPO}")
    files: dict[str, Path | bytes | Scrubbed] = dict(web_files(web or WEB))
    files.update({f"vendor/{name}": ORT_DIST / name for name in ORT_FILES})
    # mnist.onnx -> mnist.int8.onnx and mnist.json beside it, as `python -m export --int8` writes them, and
    # the line model mnist.lines.onnx (`python -m export --lines`), which reads a number's lines whole.
    stem = model.name.removesuffix(".onnx").removesuffix(".int8")
    int8, sidecar = model.with_name(f"{stem}.int8.onnx"), model.with_name(f"{stem}.json")
    lines = model.with_name(f"{stem}.lines.onnx")
    models = [{"variant": "int8" if model.name.endswith(".int8.onnx") else "fp32", "file": f"models/{model.name}"}]
    files[f"models/{model.name}"] = model
    if int8.is_file() and int8 != model:
        models.append({"variant": "int8", "file": f"models/{int8.name}"})
        files[f"models/{int8.name}"] = int8
    if sidecar.is_file():
        files[f"models/{sidecar.name}"] = Scrubbed(sidecar)
    if lines.is_file():
        files[f"models/{lines.name}"] = lines
    manifest = {"models": models, "sidecar": f"models/{sidecar.name}" if sidecar.is_file() else None,
                "lines": f"models/{lines.name}" if lines.is_file() else None,
                "onnxruntime_web": ort_version(),
                "files": sorted([*files, MANIFEST])}  # what --out wrote: the files a later --out may replace
    files[MANIFEST] = json.dumps(manifest, indent=1).encode()
    return files


def content(src: Path | bytes | Scrubbed) -> bytes | None:
    """The bytes to serve for `src`, or None for a plain file (streamed from disk)."""
    if isinstance(src, bytes):
        return src
    if isinstance(src, Scrubbed):
        return src.read()
    return None


# ---- --out: build beside, swap in --------------------------------------------------------------


def earlier_site(out: Path, shown: Path | str) -> list[str] | None:
    """The files of the site at `out` to replace ([] for an empty folder, None if there is none).

    Raises WebError (naming it `shown`) if `out` is anything else: it is then left alone."""
    if not out.exists() and not out.is_symlink():
        return None
    pick = "pick another --out, or empty that folder yourself"
    if not out.is_dir():
        raise WebError(f"{shown} exists and is not a folder: pick another --out")
    entries = {}  # every file, link and folder under `out`, never following a link
    for folder, dirs, names in os.walk(out, followlinks=False):
        for name in [*dirs, *names]:
            path = Path(folder, name)
            entries[path.relative_to(out).as_posix()] = path
    if not entries:
        return []
    try:
        listed = json.loads((out / MANIFEST).read_bytes())["files"]
        if not (isinstance(listed, list) and all(isinstance(f, str) for f in listed)):
            raise ValueError
    except (OSError, ValueError, KeyError, TypeError):
        raise WebError(f"{shown} is not empty and was not written by `python -m export.web --out` "
                       f"(no {MANIFEST} listing its files): {pick}") from None
    parents = {p.as_posix() for f in listed for p in Path(f).parents}
    foreign = sorted(rel for rel, p in entries.items()
                     if not (rel in listed and (p.is_file() or p.is_symlink()))
                     and not (rel in parents and p.is_dir() and not p.is_symlink()))
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise WebError(f"{shown} holds files this command did not write ({foreign[0]}{more}): {pick}")
    return [rel for rel in listed if rel in entries]


def write_site(files: dict[str, Path | bytes | Scrubbed], out: Path) -> int:
    """Write the site to `out`: built beside it, then swapped in whole. Returns its bytes."""
    target = Path(os.path.abspath(out))
    if target.is_symlink():
        target = target.resolve()  # replace what the link points to; the link stays
    previous = earlier_site(target, out)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    except OSError as e:
        raise WebError(f"cannot write the site beside {out} ({e.strerror or e}): pass a writable --out") from None
    total = 0
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(build, (target.stat().st_mode & 0o7777) if previous is not None else 0o777 & ~umask)  # mkdtemp made it 0700
        for rel, src in files.items():
            dest = build / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            data = content(src)
            if data is not None:
                dest.write_bytes(data)
            else:
                shutil.copyfile(src, dest)
            total += dest.stat().st_size
        old = swap(build, target, previous is not None)
    except BaseException as e:
        shutil.rmtree(build, ignore_errors=True)  # only what this run wrote: the old site is untouched
        if isinstance(e, OSError):
            why = f"{e.strerror or e}: {e.filename}" if e.filename else e.strerror or str(e)
        elif isinstance(e, ValueError) and isinstance(src, Scrubbed):
            why = f"{src.path} is not valid JSON"
        else:
            raise
        raise WebError(f"cannot write the site to {out} ({why}): nothing was changed there") from None
    if old is not None:
        remove_site(old, previous)
    return total


def swap(build: Path, target: Path, exists: bool) -> Path | None:
    """Rename `build` to `target`; an existing `target` first moves aside (returned, still whole)."""
    if not exists:
        os.rename(build, target)  # fails rather than replace a folder that appeared meanwhile with files
        return None
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rmdir(old)  # a fresh name beside the target, for the rename
    os.rename(target, old)
    try:
        os.rename(build, target)
    except BaseException:
        os.rename(old, target)
        raise
    return old


def remove_site(old: Path, listed: list[str]) -> None:
    """Delete the replaced site: the files it listed, then its folders once empty. Anything else stays."""
    for rel in listed:
        path = old / rel
        try:
            if path.is_symlink() or path.is_file():
                path.unlink()
        except OSError:
            pass
    for folder, _, _ in sorted(os.walk(old, followlinks=False), key=lambda w: -len(Path(w[0]).parts)):
        try:
            os.rmdir(folder)  # the deepest first; only empty ones go
        except OSError:
            pass
    if old.exists():
        print(f"note      kept {old}: the earlier site there holds files this command did not write", file=sys.stderr)


# ---- the server ----------------------------------------------------------------------------------


class HeadDeadline:
    """The request stream, with one deadline for the request line and headers together (not per read),
    so a client that trickles a byte at a time cannot keep the connection either."""

    def __init__(self, raw, connection):
        self.raw, self.connection, self.deadline = raw, connection, None

    def readline(self, size=-1):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request took too long")
            self.connection.settimeout(left)
        return self.raw.readline(size)

    def __getattr__(self, name):
        return getattr(self.raw, name)


def make_handler(files: dict[str, Path | bytes | Scrubbed], timeout: float = TIMEOUT):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "mnist-web"

        def setup(self):
            self.timeout = timeout  # every socket operation (StreamRequestHandler applies it)
            super().setup()
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()  # here, in the connection's thread, within the timeout
            self.rfile = HeadDeadline(self.rfile, self.connection)

        def handle_one_request(self):
            self.rfile.deadline = time.monotonic() + timeout  # also bounds an idle kept-alive connection
            super().handle_one_request()

        def parse_request(self):
            try:
                return super().parse_request()
            finally:  # the request is in: the response's writes get the per-operation timeout
                self.rfile.deadline = None
                self.connection.settimeout(timeout)

        def end_headers(self):
            self.send_header("X-Content-Type-Options", "nosniff")  # every response, errors included
            super().end_headers()

        def do_GET(self):
            self.send(body=True)

        def do_HEAD(self):
            self.send(body=False)

        def send(self, body: bool):
            rel = unquote(urlsplit(self.path).path).lstrip("/") or "index.html"
            src = files.get(rel)  # only the listed files: no directory listing, no ../, no dotfiles
            try:
                data = content(src) if src is not None else None
                size = len(data) if data is not None else src.stat().st_size if src is not None else None
            except (OSError, ValueError):
                src = None  # deleted or broken since the server started
            if src is None:
                self.send_error(404, "not found")
                return
            try:
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(Path(rel).suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(size))
                self.send_header("Cache-Control", "no-cache")  # a re-exported model shows up on reload
                self.end_headers()
                if body:
                    if data is not None:
                        self.wfile.write(data)
                    else:
                        with open(src, "rb") as f:
                            shutil.copyfileobj(f, self.wfile)  # 64 KiB writes, each within the timeout
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the browser went away mid-file
            except OSError:
                self.close_connection = True  # the file went away mid-file: the length cannot be kept

        def log_message(self, format, *args):  # one line per failed request only
            if len(args) > 1 and str(args[1]).startswith(("4", "5")):
                # The standard library's escaping: the request line is the client's text, control characters included.
                message = (format % args).translate(CONTROL)
                sys.stderr.write(f"{self.address_string()} {message}\n")

    return Handler


def make_server(host: str, port: int, handler, tls_context: ssl.SSLContext | None = None) -> tuple[http.server.ThreadingHTTPServer, bool]:
    """A threading server on (host, port): IPv4 or IPv6 as `host` says, `::` dual-stack where the system allows;
    over TLS with `tls_context`. Returns it and whether it also takes IPv4 (for the URL to print)."""
    family = socket.AF_INET
    if host:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    dual = [family == socket.AF_INET]

    class Server(http.server.ThreadingHTTPServer):
        address_family = family

        def server_bind(self):
            if family == socket.AF_INET6 and host == "::":
                try:
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    dual[0] = True
                except (AttributeError, OSError):
                    pass  # IPv6 only then
            super().server_bind()

        def get_request(self):
            conn, address = super().get_request()
            if tls_context is None:
                return conn, address
            # The handshake waits for the connection's own thread (Handler.setup): a slow client cannot hold accept().
            return tls_context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), address

        def handle_error(self, request, client_address):
            # A client's broken connection is not the server's error: one escaped line, no traceback.
            error = sys.exc_info()[1]
            if isinstance(error, ssl.SSLError):
                if error.reason == "HTTP_REQUEST":  # http:// typed for an https server
                    sys.stderr.write(f"{client_address[0]} sent a plain http request: this server speaks https, open https://\n")
                return  # otherwise, mostly a browser refusing the self-signed certificate until it is accepted
            if not isinstance(error, (ConnectionError, TimeoutError)):
                line = f"{client_address[0]} error: {error!r}".translate(CONTROL)
                sys.stderr.write(line + "\n")

    return Server((host, port), handler), dual[0]


def serve(files: dict[str, Path | bytes | Scrubbed], model: Path, host: str, port: int, timeout: float = TIMEOUT,
          cert_dir: Path | None = None) -> None:
    """Serve `files` until Ctrl-C; over TLS when `cert_dir` is given (its certificate made there if need be)."""
    shown = f"[{host}]" if ":" in host else host
    context, scheme = None, "http"
    if cert_dir is not None:
        try:
            cert, key, how = tls.certificate(cert_dir, host)
            context, scheme = tls.context(cert, key), "https"
        except tls.TLSError as e:
            raise WebError(str(e)) from None
    try:
        server, ipv4 = make_server(host, port, make_handler(files, timeout), context)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise WebError(f"port {port} on {host} is in use: pick another with --port (or --port 0 for any free one)") from None
        raise WebError(f"cannot listen on {shown}:{port} ({e.strerror or e}): check --host and --port") from None
    local = "127.0.0.1" if host in ("0.0.0.0", "") or (host == "::" and ipv4) else "[::1]" if host == "::" else shown
    url = f"{scheme}://{local}:{server.server_address[1]}/"
    variants = " + ".join(m["variant"] for m in json.loads(files[MANIFEST])["models"])
    print(f"model     {model} ({variants})", flush=True)
    print(f"runtime   onnxruntime-web {ort_version()} (wasm, 1 thread): inference runs in the browser", flush=True)
    if host in ("0.0.0.0", "::", ""):
        stack = " (IPv6 and IPv4)" if host == "::" and ipv4 else " (IPv6 only)" if host == "::" else ""
        print(f"network   listening on every interface{stack}: a phone on this network opens {scheme}://THIS-MACHINE-IP:"
              f"{server.server_address[1]}/", flush=True)
    if context is None:
        camera = "the camera works on localhost only (browsers give it to https pages): --https for a phone"
        print(f"note      {FILE_NOTE}; {camera}" if host in ("0.0.0.0", "::", "") else f"note      {FILE_NOTE}", flush=True)
    else:
        print(f"cert      {cert} ({how}, self-signed), for {', '.join(tls.addresses(host))}", flush=True)
        print(f"sha256    {tls.fingerprint(cert)}", flush=True)
        print("          the browser warns about a self-signed certificate: accept it only if its SHA-256 fingerprint is this one", flush=True)
    print(f"open      {url}   (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.web", description="Serve the in-browser digit demo, or write it as a static site.")
    parser.add_argument("--model", default="artifacts/mnist.onnx", help="the exported fp32 .onnx (its .int8.onnx, .lines.onnx and .json beside it are served too)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface, for a phone on this network; ::, IPv6 too)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT,
                        help="seconds a client has to send its request, and to take each 64 KiB of a response (default: %(default)g)")
    parser.add_argument("--https", action="store_true",
                        help="serve over TLS with a self-signed certificate (made with openssl on first use, then kept): a phone's camera needs https")
    parser.add_argument("--cert-dir", type=Path, default=None,
                        help=f"where --https keeps cert.pem and key.pem (default: {tls.default_dir()})")
    parser.add_argument("--out", type=Path, help="write a static site to this folder instead of serving")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, not {args.port}")
    if not 0 < args.timeout < 1e6:
        parser.error(f"--timeout must be a positive number of seconds, not {args.timeout:g}")
    try:
        files = site_files(Path(args.model))
        if args.out:
            total = write_site(files, args.out)
            print(f"wrote     {args.out}/ ({len(files)} files, {total / 2**20:.1f} MiB)")
            print(f"serve it  python -m http.server -d {args.out} 8000, then open http://127.0.0.1:8000/ (any static host works)")
            print(f"note      {FILE_NOTE}")
            return 0
        cert_dir = (args.cert_dir or tls.default_dir()) if args.https else None
        serve(files, Path(args.model), args.host, args.port, args.timeout, cert_dir)
    except WebError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
