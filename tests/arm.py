"""An emulated Raspberry Pi for the tests: Debian's arm64 Python 3.11 with PyPI's aarch64 wheels of numpy,
pillow and onnxruntime, run by qemu-user on an x86-64 Debian bookworm machine (its own apt sources give the
arm64 packages). Nothing is installed system-wide and nothing but Debian's packages and PyPI is used.

    python -m tests.arm                                    # build it (or find it built), print what it holds
    python -m tests.arm --cpu cortex-a76 predict.pyz --model mnist.onnx photo.jpg   # Python "on a Pi 5"

The build (about 130 MB of downloads and half a minute; then kept, so later runs take no time):

1. a private apt state in the cache (its own lists, an empty dpkg status, APT::Architecture "arm64" with
   the machine's architecture beside it, and the machine's own apt sources), refreshed by `apt-get update`;
2. `apt-get download` of Debian's qemu-user-static (the machine's architecture; only qemu-aarch64-static is
   unpacked) and of Python 3.11 with the libraries it and the wheels load (arm64), `dpkg -x` into sysroot/;
3. `pip install --target sysroot/usr/local/lib/python3.11/dist-packages --platform manylinux_2_28_aarch64
   --only-binary=:all:` numpy, pillow and onnxruntime at the versions of constraints.txt (their
   dependencies too), where Debian's python3.11 looks for them on a device;
4. one root per CPU, cortex-a72/ (Raspberry Pi 4) and cortex-a76/ (Raspberry Pi 5): links to sysroot's
   folders and a proc/cpuinfo of that board.

Run Python as `qemu-aarch64-static -cpu cortex-a72 -L ROOT ROOT/usr/bin/python3.11` (python_command()).
Two traps:

- qemu 7.2 (bookworm's) passes the machine's own /proc/cpuinfo through, and `import onnxruntime`
  segfaults parsing x86 cores. qemu's -L resolves every absolute path a guest opens to ROOT/path when
  that exists (util/path.c), /proc/cpuinfo included, so ROOT/proc/cpuinfo, the board's own text, fixes it;
  a root per CPU gives each board its own. (onnxruntime takes the CPU's features from the auxiliary
  vector, which qemu fills from -cpu: the Pi 5's dot-product instructions are there, the Pi 4's lack them.)
- qemu's default -cpu max enables SVE, which no Raspberry Pi has, and runs about 10x slower: always name
  the CPU.

The cache is .cache/arm64/ in the repository (git-ignored), or $MNIST_ARM64_CACHE (.ci/run keeps it in the
user's cache folder, so a machine builds it once). It is rebuilt whole when what it is built from changes
(this file's package list, constraints.txt's versions, the cpuinfo texts). Emulated times say nothing
about a real board's speed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MNIST_ARM64_CACHE") or REPO / ".cache" / "arm64")
CONSTRAINTS = REPO / "constraints.txt"
PYTHON = "python3.11"  # Debian bookworm's, as on Raspberry Pi OS (bookworm)
# Python 3.11 and the shared libraries that it, its standard library modules the predictor uses, and the
# wheels load (libstdc++ and libgcc for onnxruntime); not readline, curses, sqlite, dbm.
DEBS = ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libgcc-s1", "libstdc++6",
        "zlib1g", "libexpat1", "libssl3", "libffi8", "libbz2-1.0", "liblzma5", "libuuid1", "libcrypt1"]
WHEELS = ["numpy", "pillow", "onnxruntime"]  # what the predictor needs on the device
PLATFORM = "manylinux_2_28_aarch64"  # bookworm's glibc is 2.36; pip also takes older manylinux tags
SITE = "usr/local/lib/python3.11/dist-packages"  # where Debian's python3.11 finds pip-installed packages


def _cpuinfo(core: str, cores: int, board: str) -> str:
    return "".join(f"processor\t: {i}\n{core}\n" for i in range(cores)) + board


# /proc/cpuinfo of each board under its 64-bit Raspberry Pi OS (the Pi 4's A72 has no crypto extensions).
CPUS = {
    "cortex-a72": ("Raspberry Pi 4", _cpuinfo(
        "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\n"
        "CPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n", 4,
        "Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n")),
    "cortex-a76": ("Raspberry Pi 5", _cpuinfo(
        "BogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
        "asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\n"
        "CPU part\t: 0xd0b\nCPU revision\t: 1\n", 4,
        "Revision\t: c04170\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n")),
}
HOST_ARCH = {"x86_64": "amd64"}  # the machines it is built on (qemu-user-static for that architecture)
TIMEOUT = 600  # s, for each download step


class Unavailable(RuntimeError):
    """The environment cannot be built on this machine (not Debian on x86-64, or the registries unreachable)."""


def pins() -> dict[str, str]:
    """constraints.txt as {name: version} (lowercase names)."""
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            out[name.strip().lower()] = version.strip()
    return out


def key() -> str:
    """What the cache is built from: a different key rebuilds it."""
    recipe = {"format": 1, "debs": DEBS, "wheels": {w: pins().get(w) for w in WHEELS}, "platform": PLATFORM, "cpus": CPUS}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def qemu_path(cache: Path = CACHE) -> Path:
    return cache / "qemu-aarch64-static"


def root(cpu: str, cache: Path = CACHE) -> Path:
    return cache / cpu


def python_command(cpu: str, cache: Path = CACHE) -> list[str]:
    """The command that runs the board's Python: append a script or -c and its arguments."""
    if cpu not in CPUS:
        raise ValueError(f"cpu must be one of {', '.join(CPUS)}, not {cpu!r}")
    return [str(qemu_path(cache)), "-cpu", cpu, "-L", str(root(cpu, cache)), str(root(cpu, cache) / "usr" / "bin" / PYTHON)]


def ready(cache: Path = CACHE) -> bool:
    stamp = cache / "READY"
    return stamp.is_file() and stamp.read_text().strip() == key()


def _run(cmd: list[str], what: str, log, error: type[Exception] = Unavailable, **kw) -> subprocess.CompletedProcess:
    """Run a step; a failure raises `error` with its first error line (Unavailable: a download or unpacking
    step, which fails where the registries cannot be reached; RuntimeError: the built environment is wrong)."""
    log(f"arm64: {what}")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, **kw)
    except subprocess.TimeoutExpired:
        raise error(f"{what}: no answer in {TIMEOUT} s") from None
    if proc.returncode != 0:
        lines = [s.strip() for s in (proc.stderr + proc.stdout).splitlines() if s.strip()]
        errors = [s for s in lines if s.startswith(("E:", "ERROR:", "error:"))]  # apt's, pip's, dpkg's first error
        raise error(f"{what} failed: {(errors or lines or [f'exit {proc.returncode}'])[0]}")
    return proc


def _apt(state: Path) -> list[str]:
    """apt-get's options for the private state: arm64 first, the machine's own sources and keys."""
    arch = HOST_ARCH[platform.machine()]
    return ["-o", f"Dir::State={state / 'lib'}", "-o", f"Dir::State::status={state / 'status'}",
            "-o", f"Dir::Cache={state / 'cache'}", "-o", f"Dir::Etc::Preferences={state / 'none'}",
            "-o", f"Dir::Etc::PreferencesParts={state / 'none.d'}", "-o", "APT::Architecture=arm64",
            "-o", "APT::Architectures::=arm64", "-o", f"APT::Architectures::={arch}",
            "-o", "APT::Sandbox::User=root",  # the files are the caller's: no download as user _apt
            "-o", "Acquire::Retries=1", "-o", "Acquire::http::Timeout=30", "-o", "APT::Update::Error-Mode=any", "-q"]


def _build(out: Path, log) -> None:
    arch = HOST_ARCH[platform.machine()]
    state = out / "apt"
    for d in ("lib/lists/partial", "cache/archives/partial", "none.d", "debs"):
        (state / d).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    apt = ["apt-get", *_apt(state)]
    _run([*apt, "update"], "apt-get update (private state: arm64 and the machine's sources)", log)
    debs = state / "debs"
    _run([*apt, "download", *DEBS, f"qemu-user-static:{arch}"], f"apt-get download {' '.join(DEBS)} qemu-user-static:{arch}",
         log, cwd=debs)
    sysroot = out / "sysroot"
    sysroot.mkdir()
    for deb in sorted(debs.glob("*_arm64.deb")):
        _run(["dpkg", "-x", str(deb), str(sysroot)], f"dpkg -x {deb.name}", lambda *_: None)
    [qemu_deb] = debs.glob(f"qemu-user-static_*_{arch}.deb")
    log(f"arm64: unpack usr/bin/qemu-aarch64-static from {qemu_deb.name}")
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        tar = subprocess.run(f"dpkg --fsys-tarfile {shlex.quote(str(qemu_deb))} | tar -x -C {shlex.quote(tmp)} ./usr/bin/qemu-aarch64-static",
                             shell=True, capture_output=True, text=True)
        if tar.returncode != 0:
            raise Unavailable(f"unpacking {qemu_deb.name} failed: {tar.stderr.strip()}")
        os.replace(Path(tmp) / "usr" / "bin" / "qemu-aarch64-static", qemu_path(out))
    shutil.rmtree(state)  # the lists and .debs (70 MB): what they made is kept
    site = sysroot / SITE
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--disable-pip-version-check",
          "--timeout", "30", "--target", str(site), "--platform", PLATFORM, "--implementation", "cp",
          "--python-version", "3.11", "--abi", "cp311", "--only-binary=:all:", "-c", str(CONSTRAINTS), *WHEELS],
         f"pip install --platform {PLATFORM} {' '.join(f'{w}=={pins().get(w)}' for w in WHEELS)}", log)
    for cpu, (_, cpuinfo) in CPUS.items():
        r = root(cpu, out)
        (r / "proc").mkdir(parents=True)
        (r / "proc" / "cpuinfo").write_text(cpuinfo)
        for name in sorted(p.name for p in sysroot.iterdir()):
            (r / name).symlink_to(Path("..") / "sysroot" / name)
    check = "import numpy, PIL, onnxruntime; print(numpy.__version__, PIL.__version__, onnxruntime.__version__)"
    want = " ".join(pins().get(w, "") for w in WHEELS)
    for cpu in CPUS:
        proc = _run([*python_command(cpu, out), "-c", check], f"{cpu}: import numpy, PIL, onnxruntime", log, RuntimeError)
        if proc.stdout.split() != want.split():
            raise RuntimeError(f"{cpu}: imported {proc.stdout.strip()}, want {want}")


def build(cache: Path = CACHE, log=print) -> Path:
    """Build the environment into `cache` unless it is there already; returns `cache`. Raises Unavailable
    where this machine cannot build it: not x86-64, no apt-get or dpkg, or Debian's or PyPI's registry
    unreachable. Built beside the cache and renamed into place when complete, under a lock."""
    if ready(cache):
        return cache
    if platform.machine() not in HOST_ARCH:
        raise Unavailable(f"built on x86-64 machines only, this one is {platform.machine()}")
    for tool in ("apt-get", "dpkg", "tar"):
        if not shutil.which(tool):
            raise Unavailable(f"{tool} not found: built with Debian's tools, on Debian bookworm")
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it
        if ready(cache):
            return cache
        partial = cache.with_name(f".{cache.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir()
        try:
            _build(partial, log)
            (partial / "READY").write_text(key() + "\n")
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(partial, cache)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return cache


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cpu, rest = (argv[1], argv[2:]) if len(argv) >= 2 and argv[0] == "--cpu" else (None, argv)
    if rest and cpu is None or cpu not in (None, *CPUS):
        print(f"usage: python -m tests.arm [--cpu {{{','.join(CPUS)}}} PYTHON_ARGS...]\n"
              "Builds the emulated Raspberry Pi (or finds it built); with --cpu, runs its python3.11.", file=sys.stderr)
        return 2
    try:
        cache = build(log=lambda s: print(s, file=sys.stderr, flush=True))
    except Unavailable as e:
        print(f"error: the arm64 environment cannot be built here: {e}", file=sys.stderr)
        return 2
    if cpu:
        return subprocess.run([*python_command(cpu, cache), *rest]).returncode
    size = sum(p.stat().st_size for p in cache.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"cache      {cache}  ({size / 2**20:.0f} MiB)")
    print(f"qemu       {qemu_path(cache)}")
    for cpu, (board, _) in CPUS.items():
        print(f"{board:<14} {' '.join(python_command(cpu, cache))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
