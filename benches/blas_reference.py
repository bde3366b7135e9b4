"""The machine's best GEMM on a training step's own products, for `cargo bench --bench train_step`.

numpy's BLAS (OpenBLAS in numpy's wheels), on the thread count the environment gives it (the
bench runs it with OPENBLAS_NUM_THREADS=1, then 2, and unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which would
pick a slower kernel). For each config (D hidden layers of width W, batch B, input 64, 10
classes): per layer X·W (forward), Xᵀ·D (weight gradient) and D·Wᵀ (input gradient), the same
products in the same order as the bench's plain-GEMM reference; and a 1024³ product. Prints one
JSON object: per config and for the 1024³ product, the fastest and the median seconds of an
iteration over its timed batches.

    python3 benches/blas_reference.py '[[4, 64, 64], [8, 256, 128]]'
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

INPUT, CLASSES = 64, 10
BATCHES = 15
BATCH_SECONDS = 0.1


def fill(rows: int, cols: int) -> np.ndarray:
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    return (((i * 7 + j * 13) % 17) / 17.0 - 0.5).astype(np.float32)


def timed(run) -> tuple[float, float]:
    """Fastest and median seconds per call of `run`, over BATCHES batches of about BATCH_SECONDS."""
    run()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < BATCH_SECONDS:
        run()
        n += 1
    per = []
    for _ in range(BATCHES):
        t = time.perf_counter()
        for _ in range(n):
            run()
        per.append((time.perf_counter() - t) / n)
    per.sort()
    return per[0], per[len(per) // 2]


def step_products(d: int, w: int, b: int):
    dims = [INPUT] + [w] * d + [CLASSES]
    acts = [fill(b, n) for n in dims]
    ws = [fill(i, o) for i, o in zip(dims, dims[1:])]
    dws = [np.zeros((i, o), np.float32) for i, o in zip(dims, dims[1:])]
    outs = [np.zeros((b, n), np.float32) for n in dims]

    def run() -> None:
        for layer, wl in enumerate(ws):
            np.matmul(acts[layer], wl, out=outs[layer + 1])
        for layer in reversed(range(len(ws))):
            np.matmul(acts[layer].T, acts[layer + 1], out=dws[layer])
            np.matmul(acts[layer + 1], ws[layer].T, out=outs[layer])

    return run


def blas_name() -> str:
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            if pool.get("user_api") == "blas":
                return f"{pool.get('internal_api')} {pool.get('version')} ({pool.get('architecture')}), {pool.get('num_threads')} thread(s)"
    except ImportError:
        pass
    return "numpy's BLAS"


def main() -> None:
    configs = json.loads(sys.argv[1])
    a, b = fill(1024, 1024), fill(1024, 1024)
    out = np.zeros((1024, 1024), np.float32)
    result = {
        "blas": f"numpy {np.__version__}, {blas_name()}",
        "gemm_1024": timed(lambda: np.matmul(a, b, out=out)),
        "configs": {f"{d},{w},{bt}": timed(step_products(d, w, bt)) for d, w, bt in configs},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
