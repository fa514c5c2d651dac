"""CPU inference benchmark of the exported model: PyTorch eager vs onnxruntime fp32 vs onnxruntime INT8.

    python -m export.bench                                 # artifacts/mnist.onnx (+ .int8.onnx), 1 thread
    python -m export.bench --model artifacts/mnist.onnx --threads 2 --rounds 9

All three engines run the same weights (PyTorch loads the checkpoint the sidecar JSON names) on the
same real test images, interleaved round by round so that a noisy machine slows them alike.
Batch-1 latency is the p50/p95 of single calls; batch-256 throughput is images per second.
Prints a table, then one key=value line per figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from export.onnx_export import load_checkpoint
from export.verify import session
from src.data import load_mnist

BATCH = 256


def engines(model_path: Path, threads: int) -> dict:
    """name -> callable(images float32 (N, 1, 28, 28)) returning probabilities."""
    sidecar = json.loads(model_path.with_suffix(".json").read_text())
    torch.set_num_threads(threads)
    model, _ = load_checkpoint(sidecar["checkpoint"])

    @torch.inference_mode()
    def torch_eager(x):
        return model(torch.from_numpy(x))[1]

    out = {"torch": torch_eager}
    for name, path in (("ort_fp32", model_path), ("ort_int8", model_path.with_suffix(".int8.onnx"))):
        if path.exists():
            sess = session(str(path), optimize=True, threads=threads)
            out[name] = lambda x, s=sess: s.run(["probs"], {"image": x})[0]
    return out


def measure(run, single: list[np.ndarray], batch: np.ndarray, calls: int, batches: int) -> tuple[list[float], float]:
    latencies = []
    for x in single[:calls]:
        t = time.perf_counter_ns()
        run(x)
        latencies.append((time.perf_counter_ns() - t) / 1e3)  # microseconds
    t = time.perf_counter()
    for _ in range(batches):
        run(batch)
    return latencies, batches * len(batch) / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("artifacts/mnist.onnx"), help="exported fp32 model (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1, help="threads per engine (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=300, help="batch-1 calls per engine per round (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=10, help="batch-256 calls per engine per round (default: %(default)s)")
    parser.add_argument("--data-dir", default="data/mnist")
    args = parser.parse_args(argv)
    if not args.model.exists() or not args.model.with_suffix(".json").exists():
        print(f"error: {args.model} or its sidecar {args.model.with_suffix('.json')} not found: run `python -m export --int8` first",
              file=sys.stderr)
        return 2

    images, _ = load_mnist(args.data_dir, train=False)
    x = images[:, None].numpy().astype(np.float32) / 255  # (10000, 1, 28, 28) in [0, 1]
    single = [x[i : i + 1] for i in range(args.calls)]
    batch = x[:BATCH]
    runs = engines(args.model, args.threads)
    for run in runs.values():  # warm-up: allocations, kernel selection, caches
        measure(run, single, batch, 50, 2)
    lat = {k: [] for k in runs}
    thr = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            latencies, throughput = measure(run, single, batch, args.calls, args.batches)
            lat[name] += latencies
            thr[name].append(throughput)

    figures = {}
    for name in runs:
        figures[f"{name}_b1_p50_us"] = float(np.percentile(lat[name], 50))
        figures[f"{name}_b1_p95_us"] = float(np.percentile(lat[name], 95))
        figures[f"{name}_b{BATCH}_img_per_s"] = float(np.median(thr[name]))
    for name in runs:
        if name != "torch":  # speed-ups over PyTorch eager: > 1 means faster
            figures[f"{name}_vs_torch_b1"] = figures["torch_b1_p50_us"] / figures[f"{name}_b1_p50_us"]
            figures[f"{name}_vs_torch_b{BATCH}"] = figures[f"{name}_b{BATCH}_img_per_s"] / figures[f"torch_b{BATCH}_img_per_s"]

    sizes = {"torch": "-", "ort_fp32": args.model, "ort_int8": args.model.with_suffix(".int8.onnx")}
    print(f"{args.model}: {args.threads} thread(s), {args.rounds} interleaved rounds, real MNIST test images")
    print(f"{'engine':<10} {'file KiB':>9} {'b1 p50 us':>10} {'b1 p95 us':>10} {'b256 img/s':>11} {'b1 vs torch':>12}")
    for name in runs:
        size = f"{Path(sizes[name]).stat().st_size / 1024:.0f}" if name != "torch" else "-"
        speedup = f"{figures.get(f'{name}_vs_torch_b1', 1.0):.2f}x"
        print(f"{name:<10} {size:>9} {figures[f'{name}_b1_p50_us']:>10.1f} {figures[f'{name}_b1_p95_us']:>10.1f} "
              f"{figures[f'{name}_b{BATCH}_img_per_s']:>11,.0f} {speedup:>12}")
    for key, value in figures.items():
        print(f"{key}={value:.3f}" if "vs" in key else f"{key}={value:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
