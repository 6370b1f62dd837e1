"""Stored size of packed model files vs the entropy bound and the fp32 safetensors file (issue #5).

784-2000-2000-1000 compressed net (4-level Lloyd–Max activations, Philox ternary weights), a 10-class readout fitted
on random features of random data (its size, not its accuracy, matters here), for ε ∈ {0.5, 0.9, 0.95}: file bytes
per encoding, bits per hidden weight, ratio to the entropy bound of the codes, ratio to the dense fp32 safetensors
file of the same widths; seed mode against the readout alone + 1 KiB.

Usage: python benchmarks/io/bench_storage.py [--quick]
Writes benchmarks/results/storage.json.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the shared _common module

import rmtcompress as rc
from _common import RESULTS, machine_info, write_json
from rmtcompress.io import entropy_bound_bits, ternary_counts

ENCODINGS = ("2bit", "base3", "bitmask", "entropy", "auto", "seed")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="784-256-256-128")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    widths = (256, 256, 128) if args.quick else (2000, 2000, 1000)
    p, k = 784, 10
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, p)) / np.sqrt(p)
    y = rng.integers(0, k, 2000)
    rows = []
    lines = [
        "| ε | encoding | file bytes | bits / hidden weight | × entropy bound | × smaller than fp32 safetensors |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        dims = (p, *widths)
        dense = {
            f"w{i}": rng.standard_normal((dims[i + 1], dims[i])).astype(np.float32)
            for i in range(len(widths))
        }
        dense["head"] = rng.standard_normal((k, widths[-1])).astype(np.float32)
        save_file(dense, str(Path(tmp) / "dense.safetensors"))
        dense_bytes = (Path(tmp) / "dense.safetensors").stat().st_size
        for eps in (0.5, 0.9, 0.95):
            spec = rc.MLPSpec(p, widths, ("relu",) * 3)
            model = rc.compress(spec, rc.NTKLCConfig(sparsity=eps, weight_sampling="philox", seed=0))
            rc.fit_readout(model, X, y)
            n_w = sum(dims[i] * dims[i + 1] for i in range(len(widths)))
            bound_bits = sum(
                entropy_bound_bits(ternary_counts(getattr(model, f"w{i}").numpy())) for i in range(3)
            )
            path = Path(tmp) / "m.rmt"
            rc.save(model, path, encoding="2bit")
            base = path.stat().st_size - 2 * n_w / 8  # everything but the 2-bit payload
            for enc in ENCODINGS:
                t = time.perf_counter()
                rc.save(model, path, encoding=enc)
                t_save = time.perf_counter() - t
                t = time.perf_counter()
                rc.load(path)
                t_load = time.perf_counter() - t
                size = path.stat().st_size
                payload_bits = max(0.0, (size - base) * 8)
                row = {
                    "sparsity": eps,
                    "encoding": enc,
                    "file_bytes": size,
                    "payload_bits_per_weight": payload_bits / n_w,
                    "entropy_bound_bits_per_weight": bound_bits / n_w,
                    "ratio_to_entropy_bound": payload_bits / bound_bits if enc != "seed" else None,
                    "ratio_fp32_safetensors": dense_bytes / size,
                    "save_s": t_save,
                    "load_s": t_load,
                    "non_payload_bytes": base,
                }
                rows.append(row)
                ratio = (
                    "—" if row["ratio_to_entropy_bound"] is None else f"{row['ratio_to_entropy_bound']:.4f}"
                )
                lines.append(
                    f"| {eps} | {enc} | {size:,} | {row['payload_bits_per_weight']:.4f} | {ratio} | "
                    f"{row['ratio_fp32_safetensors']:.0f}× |"
                )
            readout_bytes = (widths[-1] + 1) * k * 8
            seed_row = next(r for r in rows if r["sparsity"] == eps and r["encoding"] == "seed")
            seed_row["readout_bytes_float64"] = readout_bytes
            seed_row["seed_mode_within_readout_plus_1KiB"] = seed_row["file_bytes"] <= readout_bytes + 1024
    lines.append("")
    lines.append(
        f"Dense fp32 safetensors file of the same widths: {dense_bytes:,} bytes. 'bits / hidden weight' counts the "
        "file minus its non-payload part (header, metadata, readout). Seed mode stores no weight payload; the "
        "readout is float64 (bit-identical predictions), so 'readout alone' = (d_L+1)·K·8 bytes."
    )
    result = {
        "benchmark": "storage_sizes",
        "quick": bool(args.quick),
        "widths": list(widths),
        "dense_fp32_safetensors_bytes": dense_bytes,
        "rows": rows,
        "markdown_table": "\n".join(lines),
        "machine": machine_info(),
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]),
    }
    out = RESULTS / ("storage_quick.json" if args.quick else "storage.json")
    write_json(out, result)
    print("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
