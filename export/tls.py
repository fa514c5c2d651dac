"""TLS for `python -m export.web --https`: a self-signed certificate, made once and kept.

    python -m export.web --host 0.0.0.0 --https          # a phone on this network opens https://THIS-MACHINE-IP:8000/
    python -m export.web --https --cert-dir ~/my-certs   # keep (or bring) cert.pem and key.pem there

Browsers give a page the camera (getUserMedia) only in a secure context: https, or http on localhost. A phone
opening http://LAN-ADDRESS:8000/ gets no camera, hence --https. Nobody can sign a certificate for a LAN
address, so the server makes its own: an ECDSA P-256 key and a certificate for localhost, this machine's
name and its addresses (the subjectAltName a browser checks), valid 825 days (the longest that Apple's
devices accept), written with the `openssl` command (no Python package needed) to the cache folder
(~/.cache/mnist-web, or $XDG_CACHE_HOME/mnist-web; --cert-dir picks another). Later runs use it again, so
its fingerprint stays the same: a new one is made only when it expired, or when this machine has an address
it does not name. The phone warns about a certificate no authority signed; the SHA-256 fingerprint printed
here, compared with the one the phone shows (the certificate's details), tells that it is this server's.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

DAYS = 825  # days of validity: Apple's devices refuse server certificates valid for longer
CERT, KEY = "cert.pem", "key.pem"


class TLSError(Exception):
    """A user error: str() is the one-line reason."""


def default_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mnist-web"


def addresses(host: str) -> list[str]:
    """The names and IP addresses a browser may reach this server by: localhost, this machine's name
    (plain and .local, as mDNS announces it), its addresses on its networks, and `host` itself."""
    names = ["localhost", socket.gethostname(), f"{socket.gethostname().split('.')[0]}.local", "127.0.0.1", "::1"]
    try:
        names += [info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        pass
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:  # the address of the default route: no packet is sent, connect() on UDP only picks the route
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                names.append(s.getsockname()[0])
        except OSError:
            pass
    if host not in ("", "0.0.0.0", "::"):
        names.append(host)
    out = []
    for name in names:
        name = name.split("%")[0]  # an IPv6 scope (fe80::1%eth0) is no part of the address
        if name and name not in out:
            out.append(name)
    return out


def san(names: list[str]) -> str:
    """subjectAltName for openssl: IP: for addresses, DNS: for names."""
    def entry(name):
        try:
            return f"IP:{ipaddress.ip_address(name)}"
        except ValueError:
            return f"DNS:{name}"
    return ",".join(entry(n) for n in names)


def fingerprint(cert: Path) -> str:
    """SHA-256 of the certificate (DER), as browsers show it: AB:CD:..."""
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


SUBJECT = "mnist-web (self-signed)"  # the commonName of the certificates this module makes


def _decode(cert: Path) -> dict | None:
    """The certificate's fields (notAfter, subject, subjectAltName), or None where it cannot be read here."""
    try:
        return ssl._ssl._test_decode_cert(str(cert))  # the standard library's own reader (no openssl command)
    except (ssl.SSLError, OSError, AttributeError):
        return None


def _ours(info: dict) -> bool:
    return any(key == "commonName" and value == SUBJECT for rdn in info.get("subject", ()) for key, value in rdn)


def _covers(info: dict, names: list[str]) -> bool:
    """Whether the certificate is valid for a while yet and names every one of `names`."""
    ends = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(info["notAfter"]), datetime.timezone.utc)
    if ends < datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1):
        return False
    named = {_canonical(value.strip()) for _, value in info.get("subjectAltName", ())}
    return {_canonical(n) for n in names} <= named


def _canonical(name: str) -> str:
    """An address in one spelling (0:0:0:0:0:0:0:1 is ::1), a name in lower case."""
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def certificate(folder: Path, host: str) -> tuple[Path, Path, str]:
    """The certificate and key in `folder`, made there if missing, or if one this module made expired or
    does not name this machine's addresses. A certificate made elsewhere (or one this Python cannot read)
    is used as it is, never replaced. Returns (cert, key, "kept" | "new")."""
    cert, key = folder / CERT, folder / KEY
    names = addresses(host)
    if cert.is_file() and key.is_file():
        info = _decode(cert)
        if info is None or not _ours(info) or _covers(info, names):
            return cert, key, "kept"
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TLSError(f"--https makes its certificate with the openssl command, which is not installed: install it "
                       f"(apt-get install openssl), or put a {CERT} and {KEY} made elsewhere in {folder} (--cert-dir)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TLSError(f"cannot make the certificate's folder {folder} ({e.strerror or e}): pass a writable --cert-dir") from None
    new_cert, new_key = folder / f".{CERT}.new", folder / f".{KEY}.new"
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
               "-keyout", str(new_key), "-out", str(new_cert), "-days", str(DAYS), "-subj", f"/CN={SUBJECT}",
               "-addext", f"subjectAltName={san(names)}", "-addext", "basicConstraints=critical,CA:FALSE",
               "-addext", "extendedKeyUsage=serverAuth", "-addext", "keyUsage=critical,digitalSignature"]
    old = os.umask(0o077)  # the key: readable by its owner only
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TLSError(f"openssl could not make the certificate ({e}): pass --cert-dir with a {CERT} and {KEY}") from None
    finally:
        os.umask(old)
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise TLSError(f"openssl could not make the certificate in {folder} ({why}): pass another --cert-dir")
    os.replace(new_key, key)  # both complete before either is used
    os.replace(new_cert, cert)
    return cert, key, "new"


def context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for the certificate: TLS 1.2 and up."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as e:
        raise TLSError(f"cannot use the certificate {cert} with key {key} ({e}): delete both to make new ones") from None
    return ctx
