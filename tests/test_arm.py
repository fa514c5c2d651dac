"""The predictor on a Raspberry Pi 4 (Cortex-A72) and a Pi 5 (Cortex-A76), emulated by qemu-user: Debian's
arm64 Python 3.11 and PyPI's aarch64 wheels of numpy, pillow and onnxruntime (tests/arm.py builds them
once into a cache), running the device's own command, `python predict.pyz --model mnist.onnx --json FILES`,
give the same outcome as this x86 machine: the Pi 5 for every file with the fp32 model, both Pis for the
renders with the fp32 and the INT8 model: the same digit, the same "no digit found", probabilities equal to
float rounding; with the line model beside the model, the same numbers read whole. And the predictor's peak
memory on a 12-megapixel JPEG fits a 512 MB board (Raspberry Pi Zero 2 W).

Where the environment cannot be built (no apt-get, not x86-64, the registries unreachable) the ARM test is
skipped with the reason, except in CI (CI=true), where it fails. Emulated times say nothing about a real
board's speed: they are printed only to keep the test's own time in view.
"""

import io
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import arm, photos
from tests.conftest import REPO
from export.webbench import mnist_test_digits

# With tests/data's 8 digit photos and 7 blank ones: 35 files. Under emulation each costs 1.3-1.8 s in each
# emulated run (the number reader weighs cuts of every mark wider than 0.4 x its height, about 27 inputs of the
# network a render; Pi 5, Zen 4 VM, 2026-12-07). The renders check the network's arithmetic, which 10 of them
# check as well as 30 (270 inputs of the network); the photos check the preprocessing (those of tests/data each
# a threshold away from another outcome), which is the same numpy wheel whatever the model and whichever Pi:
# so the fp32 model reads all 35 files on the Pi 5 (the faster to emulate), and the renders on the Pi 4; the
# INT8 model, whose kernels differ from board to board (the Pi 5 has dot-product instructions), the renders.
RENDERS, PHOTOS, BLANKS = 10, 8, 2
MODELS = {"fp32": "mnist.onnx", "int8": "mnist.int8.onnx"}
PROBS_TOLERANCE = 1e-4  # measured: 6.0e-7 at most (float rounding of other SIMD kernels)
MIB = 2**20


@pytest.fixture(scope="session")  # session: set up before good_model, so a skip costs no training
def arm_env() -> Path:
    try:
        return arm.build(log=lambda s: print(s, flush=True))
    except arm.Unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the ARM test, but its environment could not be built: {e}")
        pytest.skip(f"ARM emulation not built ({e}); `python -m tests.arm` builds it")


def device_env() -> dict:
    """The environment of a device's shell: none of this repository's Python settings."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


@pytest.fixture(scope="module")
def device(good_model, tmp_path_factory) -> tuple[Path, list[str]]:
    """A folder as on the device: the two models, predict.pyz, and images/ with 35 files ->
    (folder, file names relative to it, as the command line gets them)."""
    folder = tmp_path_factory.mktemp("pi")
    for name in (*MODELS.values(), "predict.pyz"):
        shutil.copy(good_model.with_name(name), folder / name)
    images, _ = mnist_test_digits()
    rng = np.random.default_rng(2)
    (folder / "images").mkdir()
    names = []
    for n, i in enumerate(rng.choice(len(images), RENDERS, replace=False)):  # dark on white, 40-199 px
        s, a = int(rng.integers(40, 200)), images[i]
        img = Image.fromarray(255 - a).resize((s, s), Image.BICUBIC)
        if n % 5 == 4:  # every fifth light on dark, greyscale
            img = Image.fromarray(a).resize((s, s), Image.BICUBIC)
        name = f"images/render_{n:02d}.png"
        (img if n % 5 == 4 else img.convert("RGB")).save(folder / name)
        names.append(name)
    for path in photos.write(photos.photo_set(PHOTOS, BLANKS, seed=5), folder / "images" / "photos"):
        names.append(path.relative_to(folder).as_posix())
    for kind in ("digit-photos", "blank-photos"):  # hard cases: a threshold away from another outcome
        for path in sorted((REPO / "tests" / "data" / kind).glob("*.jpg")):
            shutil.copy(path, folder / "images" / path.name)
            names.append(f"images/{path.name}")
    return folder, names


def predict(cmd: list[str], folder: Path, model: str, names: list[str]) -> dict:
    t0 = time.monotonic()
    proc = subprocess.run([*cmd, "predict.pyz", "--model", model, "--json", *names], cwd=folder, env=device_env(),
                          capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - t0
    assert proc.returncode in (0, 1) and proc.stdout.startswith("["), f"{cmd[:3]} exit {proc.returncode}\n{proc.stderr[-3000:]}"
    results = json.loads(proc.stdout)
    return {"exit": proc.returncode, "seconds": seconds, "failed": proc.stderr.splitlines(),
            "digits": {r["path"]: r["digit"] for r in results}, "probs": {r["path"]: r["probs"] for r in results}}


def only(run: dict, names: list[str]) -> dict:
    """predict()'s outcome for the files `names` among those it read: their digits and probabilities, the lines
    of those without a digit, and the exit status those files alone give (1 when one had no digit)."""
    failed = [line for line in run["failed"] if line.split(": ")[0] in names]
    return {"exit": int(bool(failed)), "failed": failed, "digits": {n: d for n, d in run["digits"].items() if n in names},
            "probs": {n: p for n, p in run["probs"].items() if n in names}}


def test_pi_4_and_pi_5_give_the_digits_of_x86(arm_env, device):
    folder, names = device
    renders = [n for n in names if n.startswith("images/render_")]
    files = {(cpu, m): renders for cpu in ("x86", *arm.CPUS) for m in MODELS} | {("x86", "fp32"): names, ("cortex-a76", "fp32"): names}
    t0, cpu0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    jobs = {(cpu, m): arm.python_command(cpu, arm_env) for cpu in arm.CPUS for m in MODELS}
    jobs |= {("x86", m): [sys.executable] for m in MODELS}
    # Two at a time: the emulated runs are CPU-bound, one core each; the longest (the Pi 5's 35 files) first.
    jobs = dict(sorted(jobs.items(), key=lambda job: -len(files[job[0]])))
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {job: pool.submit(predict, cmd, folder, MODELS[job[1]], files[job]) for job, cmd in jobs.items()}
        runs = {job: f.result() for job, f in futures.items()}
    for m in MODELS:
        if m == "fp32":
            assert len(runs["x86", m]["digits"]) >= len(names) - BLANKS - 5 - 3, runs["x86", m]["failed"]  # all but the blanks and a few
        else:
            assert len(runs["x86", m]["digits"]) == RENDERS, runs["x86", m]["failed"]
        for cpu in arm.CPUS:
            got, want = runs[cpu, m], only(runs["x86", m], files[cpu, m])
            diff = max(abs(p - q) for path in want["probs"] for p, q in zip(want["probs"][path], got["probs"].get(path, [np.inf])))
            print(f"{arm.CPUS[cpu][0]} ({cpu}), {m}: {len(got['digits'])} digits and {len(got['failed'])} 'no digit' "
                  f"of {len(files[cpu, m])} files in {got['seconds']:.0f} s ({len(files[cpu, m]) / got['seconds']:.1f} files/s emulated); "
                  f"same outcome for every file as x86: {got['digits'] == want['digits'] and got['failed'] == want['failed']}; "
                  f"max |prob diff| {diff:.1e}")
            assert got["failed"] == want["failed"], (cpu, m)  # the same files without a digit, same reason
            assert got["digits"] == want["digits"], (cpu, m)  # the same digit for every other file, in order
            assert list(got["digits"]) == list(want["digits"])
            assert got["exit"] == want["exit"]
            assert diff <= PROBS_TOLERANCE, (cpu, m, diff)
    print("digits (x86 = Pi 5, and Pi 4 on the renders, fp32):", "".join(str(d) for d in runs["x86", "fp32"]["digits"].values()))
    print("digits (x86 = Pi 4 = Pi 5, INT8):", "".join(str(d) for d in runs["x86", "int8"]["digits"].values()))
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    print(f"whole comparison {time.monotonic() - t0:.0f} s, {cpu:.0f} CPU seconds in the 6 runs (2 at a time)")


NUMBERS = 2  # generated numbers (tests/numbers.py, seed 3: a clean scan, a photo) read whole by the line model


def test_pi_4_and_pi_5_read_numbers_whole_as_x86(arm_env, device, line_model, tmp_path):
    """predict.pyz with the line model beside the model (mnist.lines.onnx, as on the device): the same number,
    boxes and digits on the Pis as on x86, probabilities equal to float rounding."""
    from tests.numbers import number_set

    for name in ("mnist.onnx", "predict.pyz"):
        shutil.copy(device[0] / name, tmp_path / name)
    shutil.copy(line_model, tmp_path / "mnist.lines.onnx")
    names = []
    for kind in ("clean", "photo"):
        for i, (blob, _) in enumerate(number_set(NUMBERS // 2, seed=3, kind=kind)):
            names.append(f"{kind}_{i}.png")
            Image.open(io.BytesIO(blob)).convert("RGB").save(tmp_path / names[-1])

    def read(cmd):
        proc = subprocess.run([*cmd, "predict.pyz", "--model", "mnist.onnx", "--json", *names], cwd=tmp_path,
                              env=device_env(), capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(["x86", *arm.CPUS], pool.map(read, [[sys.executable]] + [arm.python_command(c, arm_env) for c in arm.CPUS])))
    want = runs.pop("x86")
    for cpu, got in runs.items():
        assert [r["number"] for r in got] == [r["number"] for r in want], cpu
        assert [[d["box"] for d in r["digits"]] for r in got] == [[d["box"] for d in r["digits"]] for r in want], cpu
        diff = max(abs(p - q) for a, b in zip(got, want) for c, d in zip(a["digits"], b["digits"]) for p, q in zip(c["probs"], d["probs"]))
        print(f"{arm.CPUS[cpu][0]} ({cpu}): numbers {[r['number'] for r in got]} as x86; max |prob diff| {diff:.1e}")
        assert diff <= PROBS_TOLERANCE, (cpu, diff)


# Linux keeps a process's peak memory across exec: a child forked from pytest (a GB of torch and training)
# would report pytest's. So a small Python starts the command and reports the peak of that child alone.
MEASURE = ("import os, subprocess, sys\n"
           "with open(sys.argv[1], 'w') as out:\n"
           "    p = subprocess.Popen(sys.argv[2:], stdout=out)\n"
           "    _, status, usage = os.wait4(p.pid, 0)\n"
           "print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)")


def peak_rss(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run `cmd` (its exit status must be 0) -> (its peak resident memory in bytes, its stdout)."""
    proc = subprocess.run([sys.executable, "-c", MEASURE, "rss.out", *cmd], cwd=cwd, env=device_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    status, kib = map(int, proc.stdout.split())
    assert status == 0, proc.stderr[-2000:]
    return kib * 1024, (cwd / "rss.out").read_text()


def test_twelve_megapixel_jpeg_fits_a_512_mb_board(device):
    """A 512 MB board (Raspberry Pi Zero 2 W) shares its memory with the GPU and the OS: the predictor's whole
    process, Python and the three packages included, must stay under half of it. Measured on this x86
    machine; where tests/arm.py's environment is built, also under emulation (qemu's own memory included,
    so an upper bound of the arm64 process)."""
    from src.data import load_mnist

    folder, _ = device
    images, labels = load_mnist(REPO / "data" / "mnist", train=False)
    kind = {"framing": "sheet on a desk", "paper": "grid", "pen": photos.MNIST_INK, "resolution": photos.PHONE_RES}
    blob, attrs = photos.render(images[7].numpy(), np.random.default_rng(1), kind)
    w, h = attrs["size"]
    photo = folder / "12mp.jpg"  # a phone's 12 MP, 4000x3000 (here upright, 3000x4000), 3.5 MB
    Image.open(io.BytesIO(blob)).convert("RGB").resize((4000, 3000) if w > h else (3000, 4000), Image.BICUBIC).save(photo, quality=92)
    rss, out = peak_rss([sys.executable, "predict.pyz", "--model", "mnist.onnx", photo.name], folder)
    print(f"x86-64 Python {sys.version.split()[0]}: peak resident memory {rss / MIB:.0f} MiB on {photo.name} -> {out.strip()}")
    assert out.split("\t")[1] == str(int(labels[7]))
    assert rss <= 256 * MIB
    if arm.ready():
        rss, out = peak_rss([*arm.python_command("cortex-a72"), "predict.pyz", "--model", "mnist.onnx", photo.name], folder)
        print(f"Raspberry Pi 4 (cortex-a72) emulated, qemu included: peak resident memory {rss / MIB:.0f} MiB -> {out.strip()}")
        assert out.split("\t")[1] == str(int(labels[7]))
        assert rss <= 384 * MIB
