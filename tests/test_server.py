"""`python -m export.web` as a user runs it: the static site it writes (--out) and the demo server.

Real processes and real requests: the server starts as `python -m export.web ... --port 0` and each
test waits for the URL it prints; requests go over raw sockets, so nothing is normalised on the way.
The model is a stand-in file (the server and --out only copy it), so no training is needed; the
browser tests in tests/test_web.py run the real page.
"""

import errno
import hashlib
import json
import os
import queue
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import pytest

from export import web

REPO = Path(__file__).resolve().parent.parent

needs_ort = pytest.mark.skipif(not all((web.ORT_DIST / f).is_file() for f in web.ORT_FILES),
                               reason="node_modules/onnxruntime-web missing: run `npm ci`")
SECRET = "/home/alice/private/runs/version_7/checkpoints/best.ckpt"  # a path of "the user's machine"


@pytest.fixture
def model(tmp_path) -> Path:
    """mnist.onnx, mnist.int8.onnx and the sidecar mnist.json as `python -m export --int8` lays them out."""
    folder = tmp_path / "artifacts"
    folder.mkdir()
    onnx = folder / "mnist.onnx"
    onnx.write_bytes(os.urandom(4096))
    (folder / "mnist.int8.onnx").write_bytes(os.urandom(1024))
    sidecar = {"checkpoint": SECRET, "checkpoint_sha256": "0" * 64, "epoch": 3, "file": "mnist.onnx",
               "sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(),
               "notes": {"data": "C:\\Users\\alice\\mnist", "home": "~/mnist", "relative": "logs/x"}}
    (folder / "mnist.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return onnx


def test_the_line_model_beside_the_model_is_served_and_listed(model):
    """mnist.lines.onnx beside mnist.onnx (`python -m export --lines`) is served and named in models.json, for
    the page to read a number's lines whole; without it the manifest names none."""
    assert json.loads(web.site_files(model)[web.MANIFEST])["lines"] is None
    (model.parent / "mnist.lines.onnx").write_bytes(os.urandom(2048))
    for served in (model, model.with_name("mnist.int8.onnx")):  # the INT8 model as --model: the same line model
        files = web.site_files(served)
        manifest = json.loads(files[web.MANIFEST])
        assert manifest["lines"] == "models/mnist.lines.onnx" and files["models/mnist.lines.onnx"] == model.parent / "mnist.lines.onnx"
        assert "models/mnist.lines.onnx" in manifest["files"]


def run_web(*args, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "export.web", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def snapshot(folder: Path) -> dict:
    """Every entry under `folder`: its bytes (files), its target (links) or None (folders)."""
    return {p.relative_to(folder).as_posix(): os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# ---- --out: never lose a file ----------------------------------------------------------------------


@needs_ort
def test_out_rebuilds_a_site_from_its_own_model(model, tmp_path):
    """The reported data loss: `--model site/models/mnist.onnx --out site` deleted site/models/ before
    copying the model out of it. Now it rebuilds the site, model included, and the site works."""
    site = tmp_path / "site"
    first = run_web("--model", model, "--out", site)
    assert first.returncode == 0, first.stderr
    models = {name: (site / "models" / name).read_bytes() for name in ("mnist.onnx", "mnist.int8.onnx")}

    again = run_web("--model", site / "models" / "mnist.onnx", "--out", site)
    assert again.returncode == 0, again.stderr
    for name, data in models.items():
        assert (site / "models" / name).read_bytes() == data == (model.parent / name).read_bytes()
    manifest = json.loads((site / "models.json").read_text())
    written = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert written == set(manifest["files"])  # exactly what it lists, so a later --out may replace it
    assert {"index.html", "app.js", "camera.js", "worker.js", "vendor/ort-wasm-simd-threaded.wasm", "models/mnist.json"} <= written
    readme = (site / "README.txt").read_text()  # how to serve it: over https for the camera
    assert "Serve it over https for the camera" in readme and "python -m export.web --host 0.0.0.0 --https" in readme
    assert sorted(os.listdir(tmp_path)) == ["artifacts", "site"]  # no temporary folder left beside it
    # It works: a plain static server hands out every file the page asks for.
    with static_server(site) as base:
        for rel in manifest["files"]:
            status, _, body = http_get(base, "/" + rel)
            assert status == 200 and body == (site / rel).read_bytes(), rel
        status, _, body = http_get(base, "/" + manifest["sidecar"])
        assert json.loads(body)["sha256"] == hashlib.sha256(models["mnist.onnx"]).hexdigest()


@needs_ort
@pytest.mark.parametrize("failure", [OSError(errno.EIO, "Input/output error"), KeyboardInterrupt()], ids=["io-error", "ctrl-c"])
def test_out_failure_mid_build_leaves_the_previous_site_byte_identical(model, tmp_path, monkeypatch, capsys, failure):
    site = tmp_path / "site"
    assert web.main(["--model", str(model), "--out", str(site)]) == 0
    before = snapshot(site)
    copy = shutil.copyfile

    def failing_copy(src, dest, **kw):  # the INT8 model cannot be read: after the page, runtime and fp32 model are written
        if Path(src).name == "mnist.int8.onnx":
            raise failure
        return copy(src, dest, **kw)

    monkeypatch.setattr(web.shutil, "copyfile", failing_copy)
    capsys.readouterr()
    try:
        rc = web.main(["--model", str(site / "models" / "mnist.onnx"), "--out", str(site)])
    except KeyboardInterrupt:
        rc = "interrupted"
    assert snapshot(site) == before
    assert sorted(os.listdir(tmp_path)) == ["artifacts", "site"]  # the half-built site is gone
    if isinstance(failure, OSError):
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1, err
        assert err[0].startswith(f"error: cannot write the site to {site}") and "nothing was changed" in err[0]
    else:
        assert rc == "interrupted"


@needs_ort
@pytest.mark.parametrize("case", ["own files", "site plus a file", "a file", "the model's folder", "old site"])
def test_out_refuses_a_folder_it_did_not_write(model, tmp_path, case):
    out = tmp_path / "out"
    if case == "own files":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "site plus a file":
        assert run_web("--model", model, "--out", out).returncode == 0
        (out / "CNAME").write_text("digits.example.org\n")  # e.g. a static host's own file
    elif case == "a file":
        out.write_text("mine")
    elif case == "the model's folder":
        out = model.parent
    else:  # a site of an earlier version: models.json without the list of its files
        assert run_web("--model", model, "--out", out).returncode == 0
        manifest = json.loads((out / "models.json").read_text())
        del manifest["files"]
        (out / "models.json").write_text(json.dumps(manifest))
    before = snapshot(out) if out.is_dir() else out.read_bytes()
    line = one_line_error(run_web("--model", model, "--out", out))
    assert str(out) in line and "--out" in line
    assert (snapshot(out) if out.is_dir() else out.read_bytes()) == before
    assert not [p for p in os.listdir(out.parent) if p.startswith(".")]


@needs_ort
def test_out_takes_an_empty_folder(model, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    proc = run_web("--model", model, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "models" / "mnist.onnx").read_bytes() == model.read_bytes()


# ---- the server -------------------------------------------------------------------------------------


class Server:
    """`python -m export.web ARGS --port 0` in a subprocess; .url once it printed it, .stderr as it comes."""

    def __init__(self, *args, web_dir: Path | None = None, timeout: float = 60):
        # web_dir: the page's folder to serve instead of the repository's web/ (the module's WEB).
        prefix = ([sys.executable, "-c", "import sys; from pathlib import Path; import export.web as w; "
                   "w.WEB = Path(sys.argv.pop(1)); sys.exit(w.main())", str(web_dir)]
                  if web_dir else [sys.executable, "-m", "export.web"])
        self.proc = subprocess.Popen([*prefix, *map(str, args), "--port", "0"], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines, self.stderr, self.printed = queue.Queue(), [], []  # printed: its lines up to the URL
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.proc.stderr, self.stderr.append), daemon=True).start()
        self.url, deadline = None, time.monotonic() + timeout
        while self.url is None and time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            self.printed.append(line)
            match = re.match(r"open\s+(https?://\S+)", line)
            self.url = match.group(1) if match else None
        if self.url is None:
            self.close()
            raise AssertionError(f"python -m export.web did not start: {self.err()}")
        parts = urllib.parse.urlsplit(self.url)
        self.host, self.port = parts.hostname, parts.port

    @staticmethod
    def _pump(stream, put):
        for raw in stream:
            put(raw.decode("utf-8", "replace"))

    def err(self) -> str:
        return "".join(self.stderr)

    def wait_err(self, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.err() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.err()

    def connect(self, timeout: float = 10) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=timeout)

    def raw(self, request: bytes, timeout: float = 10) -> bytes:
        """Send `request` as is; the whole response (the server closes after it)."""
        with self.connect(timeout) as s:
            s.sendall(request)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def get(self, target: str, method: str = "GET") -> tuple[int, dict, bytes]:
        return parse(self.raw(f"{method} {target} HTTP/1.0\r\nHost: x\r\n\r\n".encode("latin-1")))

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def server(*args, **kw):
    s = Server(*args, **kw)
    try:
        yield s
    finally:
        s.close()


def parse(response: bytes) -> tuple[int, dict, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(lines[0].split()[1]), headers, body


def http_get(base: str, path: str) -> tuple[int, dict, bytes]:
    parts = urllib.parse.urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return parse(b"".join(chunks))


@contextmanager
def static_server(folder: Path):
    """`python -m http.server` on a free port, as the README serves a written site; yields its URL."""
    proc = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "-d", str(folder), "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()  # Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ...
        match = re.search(r"\((http://\S+)\)", line)
        assert match, line
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def served(model):
    with server("--model", model) as s:
        yield s


@needs_ort
def test_only_listed_files_no_traversal(served):
    assert served.get("/")[0] == 200 and served.get("/app.js")[0] == 200 and served.get("/models.json")[0] == 200
    outside = ["/../README.md", "/../export/web.py", "/%2e%2e/README.md", "/%2E%2E/%2E%2E/etc/passwd",
               "/..%2FREADME.md", "/%2e%2e%2fREADME.md", "/%2F%2e%2e%2FREADME.md", "//etc/passwd", "///etc/passwd",
               "/%2Fetc%2Fpasswd", "/vendor/../../README.md", "/models/..%2f..%2fREADME.md", "/./app.js/../../README.md",
               "/web/app.js", "/node_modules/onnxruntime-web/package.json", "/models/", "/vendor/", "/.git/config",
               "/models/mnist.onnx%00.png", "http://x/../README.md"]
    readme = (REPO / "README.md").read_bytes()[:200]
    for target in outside:
        status, headers, body = served.get(target)
        assert status == 404, target
        assert readme not in body and b"root:" not in body, target


@needs_ort
def test_every_response_has_nosniff(served):
    responses = {"200": served.get("/app.js"), "404": served.get("/nope.js"), "HEAD": served.get("/", "HEAD"),
                 "501": served.get("/", "POST"),
                 "431": parse(served.raw(b"GET / HTTP/1.0\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n"))}
    assert [r[0] for r in responses.values()] == [200, 404, 200, 501, 431]
    for name, (status, headers, _) in responses.items():
        assert headers.get("x-content-type-options") == ["nosniff"], name


@needs_ort
def test_dotfiles_and_editor_backups_are_not_served(model, tmp_path):
    copy = tmp_path / "web"
    shutil.copytree(web.WEB, copy)
    junk = [".foo", ".env", "app.js~", "#app.js#", ".#app.js", ".app.js.swp", "app.js.swp", "app.js.swo",
            "app.js.orig", "app.js.bak", "index.html.rej", ".git/config", ".hidden/x.js", "4913", "notes.txt"]
    for rel in junk:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        (copy / rel).write_text("SECRET\n")
    with server("--model", model, web_dir=copy) as s:
        assert s.get("/app.js")[2] == (copy / "app.js").read_bytes()
        for rel in junk:
            status, _, body = s.get("/" + urllib.parse.quote(rel))
            assert status == 404 and b"SECRET" not in body, rel
    listed = web.site_files(model, web=copy)  # the list the server and --out share
    assert not set(junk) & set(listed)
    assert {p.name for p in web.WEB.iterdir() if p.suffix in (".js", ".html", ".css")} <= set(listed)
    site = tmp_path / "site"
    web.write_site(listed, site)
    assert not [rel for rel in junk if (site / rel).exists()]


@needs_ort
def test_control_characters_are_escaped_in_the_log(served):
    served.raw(b"GET /\x1b[2J\x1b]0;owned\x07\x9b31m HTTP/1.0\r\n\r\n")
    served.raw(b"\x1b[31mHELLO\r\n\r\n")  # not even a request: 400, and logged too
    log = served.wait_err("HELLO")
    log = served.wait_err("owned")
    assert "\x1b" not in log and "\x07" not in log and "\x9b" not in log and "\u009b" not in log
    assert "\\x1b[2J\\x1b]0;owned\\x07" in log and "\\x1b[31mHELLO" in log
    assert "Traceback" not in log


def closed(sock: socket.socket, wait: float) -> bool:
    """Whether the server closed `sock` (within `wait` seconds)."""
    ready, _, _ = select.select([sock], [], [], wait)
    if not ready:
        return False
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True


@needs_ort
def test_an_idle_client_blocks_no_one_and_is_closed(model):
    with server("--model", model, "--timeout", "1") as s:
        idle = s.connect()  # connects, never sends its request
        slow = s.connect()  # sends its request a byte at a time, each well within the timeout, never finishing
        try:
            start = time.monotonic()
            status, _, body = s.get("/models.json")  # answered while both hold a connection
            assert status == 200 and json.loads(body)["models"] and time.monotonic() - start < 2
            request, sent, cut = b"GET /models.json HTTP/1.0\r\nX-Pad: " + b"a" * 200, 0, None
            while sent < len(request) and time.monotonic() - start < 6:
                try:
                    slow.send(request[sent:sent + 1])
                except OSError:
                    cut = time.monotonic() - start
                    break
                sent += 1
                if closed(slow, 0.05):
                    cut = time.monotonic() - start
                    break
            assert cut is not None and sent < len(request), "a client trickling its request kept the connection"
            assert 0.8 < cut < 3.5, cut  # by the 1 s deadline for the whole request, not per byte
            assert closed(idle, 3)  # the idle one, by the server
            assert time.monotonic() - start < 4
        finally:
            idle.close()
            slow.close()
        assert s.get("/")[0] == 200  # and the server still serves
        assert "Traceback" not in s.err()


@needs_ort
def test_no_path_of_this_machine_in_the_site(model, tmp_path):
    on_disk = model.with_suffix(".json").read_bytes()
    with server("--model", model) as s:
        sidecar = json.loads(s.get("/models/mnist.json")[2])
        assert sidecar["checkpoint"] == "best.ckpt"
        assert sidecar["notes"] == {"data": "mnist", "home": "mnist", "relative": "logs/x"}
        assert sidecar["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()  # the page still checks the model
        manifest = json.loads(s.get("/models.json")[2])
        for rel in manifest["files"]:
            status, _, body = s.get("/" + rel)
            assert status == 200, rel
            for path in (SECRET, "alice", str(tmp_path), str(REPO)):
                assert path.encode() not in body, (rel, path)
    site = tmp_path / "site"
    assert run_web("--model", model, "--out", site).returncode == 0
    assert json.loads((site / "models" / "mnist.json").read_text())["checkpoint"] == "best.ckpt"
    assert not [p for p in site.rglob("*") if p.is_file() and b"alice" in p.read_bytes()]
    assert model.with_suffix(".json").read_bytes() == on_disk  # the export's own sidecar is left alone


def ipv6_dual_stack() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
        return True
    except (OSError, AttributeError):
        return False


@needs_ort
def test_host_ipv6_works_or_is_refused_in_one_line(model):
    if not ipv6_dual_stack():
        proc = run_web("--model", model, "--host", "::", "--port", "0")
        assert "cannot listen on [::]" in one_line_error(proc)
        return
    with server("--model", model, "--host", "::") as s:
        assert s.get("/")[0] == 200  # at the printed URL (IPv4: one dual-stack socket)
        for host in ("127.0.0.1", "::1"):
            try:
                conn = socket.create_connection((host, s.port), timeout=5)
            except OSError:
                continue  # no loopback of this family here
            with conn:
                conn.sendall(b"GET /models.json HTTP/1.0\r\n\r\n")
                assert conn.recv(64).startswith(b"HTTP/1.0 200"), host


@needs_ort
def test_server_refusals_are_one_line(model):
    assert "cannot listen on" in one_line_error(run_web("--model", model, "--host", "no-such-host.invalid", "--port", "0"))
    assert "cannot listen on" in one_line_error(run_web("--model", model, "--host", "192.0.2.1", "--port", "0"))
    bad = run_web("--model", model, "--timeout", "0")
    assert bad.returncode == 2 and "--timeout must be a positive number" in bad.stderr


# ---- pinned dependencies ----------------------------------------------------------------------------


def test_constraints_pin_the_install():
    """constraints.txt pins every installed package, the README's install command and .ci/run use it,
    and this environment is what it pins (CI installs with it)."""
    lines = [line.split("#")[0].strip() for line in (REPO / "constraints.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)
    assert all(re.fullmatch(r"[A-Za-z0-9._-]+", n) and re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for n, v in pins.items())
    canon = {re.sub(r"[-_.]+", "-", n).lower(): v for n, v in pins.items()}
    assert not {"pip", "setuptools", "mnist-lightning"} & set(canon)
    for name in ("torch", "torchvision", "lightning", "onnx", "onnxruntime", "onnxscript", "numpy", "pillow", "pytest", "playwright"):
        assert name in canon, name
        assert metadata.version(name) == canon[name], f"{name} {metadata.version(name)} installed, {canon[name]} pinned"
    assert 'pip install -c constraints.txt -e ".[test]"' in (REPO / ".ci" / "run").read_text()
    readme = " ".join((REPO / "README.md").read_text().split())
    assert 'pip install -c constraints.txt -e ".[test]"' in readme
    assert "pip freeze --exclude-editable > constraints.txt" in readme  # how to update it


# ---- --https ---------------------------------------------------------------------------------------


def tls_get(s: Server, cafile: Path, path: str = "/") -> tuple[bytes, tuple[int, dict, bytes]]:
    """GET over TLS, trusting only `cafile` and checking the host against its names; (server's cert DER, response)."""
    context = ssl.create_default_context(cafile=str(cafile))
    with s.connect() as raw, context.wrap_socket(raw, server_hostname=s.host) as conn:
        der = conn.getpeercert(binary_form=True)
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: {s.host}\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return der, parse(b"".join(chunks))


def printed(s: Server, name: str) -> str:
    return next(line.split(None, 1)[1].strip() for line in s.printed if line.startswith(name))


@needs_ort
@pytest.mark.skipif(not shutil.which("openssl"), reason="the openssl command makes --https's certificate")
def test_https_answers_over_tls_and_keeps_its_certificate(model, tmp_path):
    certs = tmp_path / "certs"
    with server("--model", model, "--https", "--cert-dir", certs) as s:
        assert s.url.startswith("https://127.0.0.1:")
        assert "(new, self-signed)" in printed(s, "cert")
        der, (status, headers, body) = tls_get(s, certs / "cert.pem")  # verifies the chain and 127.0.0.1 in its names
        assert status == 200 and body.startswith(b"<!doctype html>")
        fingerprint = printed(s, "sha256")
        assert fingerprint == ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
        with s.connect() as plain:  # http:// to the https port: no page, and one line saying why
            plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert b"<!doctype" not in plain.recv(65536)
        assert "sent a plain http request: this server speaks https" in s.wait_err("plain http")
    kept = (certs / "cert.pem").read_bytes(), (certs / "key.pem").read_bytes()
    assert oct((certs / "key.pem").stat().st_mode & 0o777) == "0o600"
    with server("--model", model, "--https", "--cert-dir", certs) as s:  # the next start: the same certificate
        assert "(kept, self-signed)" in printed(s, "cert") and printed(s, "sha256") == fingerprint
        der, (status, _, _) = tls_get(s, certs / "cert.pem", "/camera.js")
        assert status == 200 and hashlib.sha256(der).hexdigest().upper() == fingerprint.replace(":", "")
    assert ((certs / "cert.pem").read_bytes(), (certs / "key.pem").read_bytes()) == kept


@pytest.mark.skipif(not shutil.which("openssl"), reason="the openssl command makes the test's own certificate")
def test_https_never_replaces_a_certificate_made_elsewhere(model, tmp_path):
    """A user's own cert.pem/key.pem in --cert-dir (another name, none of this machine's LAN addresses) is
    served as it is: only certificates that --https made itself are ever made anew."""
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem"), "-days", "30",
                    "-subj", "/CN=my own", "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    mine = (certs / "cert.pem").read_bytes(), (certs / "key.pem").read_bytes()
    with server("--model", model, "--https", "--cert-dir", certs) as s:
        assert "(kept, self-signed)" in printed(s, "cert")
        der, (status, _, _) = tls_get(s, certs / "cert.pem")
        assert status == 200 and der == ssl.PEM_cert_to_DER_cert(mine[0].decode())
    assert ((certs / "cert.pem").read_bytes(), (certs / "key.pem").read_bytes()) == mine


@needs_ort
def test_https_without_openssl_says_so(model, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no openssl on it
    proc = subprocess.run([sys.executable, "-m", "export.web", "--model", str(model), "--https", "--cert-dir",
                           str(tmp_path / "certs"), "--port", "0"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert one_line_error(proc).startswith("error: --https makes its certificate with the openssl command, which is not installed")
