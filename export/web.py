"""Serve the in-browser demo: draw or drop a digit, onnxruntime-web classifies it on the device.

    npm ci                                        # once: onnxruntime-web, pinned by package-lock.json
    python -m export.web                          # http://127.0.0.1:8000/ for artifacts/mnist.onnx (+ .int8.onnx)
    python -m export.web --model other.onnx --port 8080
    python -m export.web --host 0.0.0.0           # a phone on the same network opens http://THIS-MACHINE:8000/
    python -m export.web --out site/              # a static site for any static host:
    python -m http.server -d site/                #   ... e.g. this one, then open http://127.0.0.1:8000/

The server only hands out files; inference runs in the browser (WebAssembly, one thread, so no
cross-origin isolation headers are needed). The page cannot work from file:// (browsers block
fetching the model and the .wasm there): serve it. Each URL maps to one file of a fixed list
(the web/ folder, three onnxruntime-web files, the model, its INT8 copy and sidecar JSON), the
same list that --out writes.
"""

from __future__ import annotations

import argparse
import errno
import http.server
import json
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
}
FILE_NOTE = "file:// cannot work (browsers block fetching the model and the .wasm from a file page): serve the page over http"


class WebError(Exception):
    """A user error: str() is the one-line reason."""


def ort_version() -> str:
    try:
        return json.loads((ORT_DIST.parent / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return "?"


def site_files(model: Path) -> dict[str, Path | bytes]:
    """URL path (relative, no leading slash) -> the file or bytes to serve there: the whole site."""
    if not model.is_file():
        raise WebError(f"model {model} not found (or not a file): export one with `python -m export --int8`, or pass --model PATH")
    missing = [name for name in ORT_FILES if not (ORT_DIST / name).is_file()]
    if missing:
        raise WebError(f"onnxruntime-web is not installed ({ORT_DIST / missing[0]} is missing): run `npm ci` in {REPO}")
    files: dict[str, Path | bytes] = {p.relative_to(WEB).as_posix(): p for p in sorted(WEB.rglob("*")) if p.is_file()}
    files.update({f"vendor/{name}": ORT_DIST / name for name in ORT_FILES})
    # mnist.onnx -> mnist.int8.onnx and mnist.json beside it, as `python -m export --int8` writes them.
    stem = model.name.removesuffix(".onnx").removesuffix(".int8")
    int8, sidecar = model.with_name(f"{stem}.int8.onnx"), model.with_name(f"{stem}.json")
    models = [{"variant": "int8" if model.name.endswith(".int8.onnx") else "fp32", "file": f"models/{model.name}"}]
    files[f"models/{model.name}"] = model
    if int8.is_file() and int8 != model:
        models.append({"variant": "int8", "file": f"models/{int8.name}"})
        files[f"models/{int8.name}"] = int8
    if sidecar.is_file():
        files[f"models/{sidecar.name}"] = sidecar
    manifest = {"models": models, "sidecar": f"models/{sidecar.name}" if sidecar.is_file() else None,
                "onnxruntime_web": ort_version()}
    files["models.json"] = json.dumps(manifest, indent=1).encode()
    return files


def write_site(files: dict[str, Path | bytes], out: Path) -> int:
    """Copy the site into `out` (created; an existing site there is refreshed). Returns its bytes."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "models.json").is_file())):
        raise WebError(f"{out} exists and is not an empty folder or an earlier site: pick another --out")
    total = 0
    try:
        if (out / "models").is_dir():
            shutil.rmtree(out / "models")  # an earlier site's models must not linger
        for rel, src in files.items():
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, bytes):
                dest.write_bytes(src)
            else:
                shutil.copyfile(src, dest)
            total += dest.stat().st_size
    except OSError as e:
        raise WebError(f"cannot write the site to {out} ({e.strerror or e}): pass a writable --out") from None
    return total


def make_handler(files: dict[str, Path | bytes]):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "mnist-web"

        def do_GET(self):
            self.send(body=True)

        def do_HEAD(self):
            self.send(body=False)

        def send(self, body: bool):
            rel = unquote(urlsplit(self.path).path).lstrip("/") or "index.html"
            src = files.get(rel)  # only the listed files: no directory listing, no ../
            if src is None:
                self.send_error(404, "not found")
                return
            data = src if isinstance(src, bytes) else None
            try:
                size = len(data) if data is not None else src.stat().st_size
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
                            shutil.copyfileobj(f, self.wfile)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser went away mid-file

        def log_message(self, format, *args):  # one line per failed request only
            if len(args) > 1 and str(args[1]).startswith(("4", "5")):
                sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def serve(files: dict[str, Path | bytes], model: Path, host: str, port: int) -> None:
    try:
        server = http.server.ThreadingHTTPServer((host, port), make_handler(files))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise WebError(f"port {port} on {host} is in use: pick another with --port (or --port 0 for any free one)") from None
        raise WebError(f"cannot listen on {host}:{port} ({e.strerror or e}): check --host and --port") from None
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else shown}:{server.server_address[1]}/"
    variants = " + ".join(m["variant"] for m in json.loads(files["models.json"])["models"])
    print(f"model     {model} ({variants})", flush=True)
    print(f"runtime   onnxruntime-web {ort_version()} (wasm, 1 thread): inference runs in the browser", flush=True)
    if host in ("0.0.0.0", "::", ""):
        print("network   listening on every interface: a phone on this network opens http://THIS-MACHINE-IP:"
              f"{server.server_address[1]}/", flush=True)
    print(f"note      {FILE_NOTE}", flush=True)
    print(f"open      {url}   (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.web", description="Serve the in-browser digit demo, or write it as a static site.")
    parser.add_argument("--model", default="artifacts/mnist.onnx", help="the exported fp32 .onnx (its .int8.onnx and .json beside it are served too)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface, for a phone on this network)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    parser.add_argument("--out", type=Path, help="write a static site to this folder instead of serving")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, not {args.port}")
    try:
        files = site_files(Path(args.model))
        if args.out:
            total = write_site(files, args.out)
            print(f"wrote     {args.out}/ ({len(files)} files, {total / 2**20:.1f} MiB)")
            print(f"serve it  python -m http.server -d {args.out} 8000, then open http://127.0.0.1:8000/ (any static host works)")
            print(f"note      {FILE_NOTE}")
            return 0
        serve(files, Path(args.model), args.host, args.port)
    except WebError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
