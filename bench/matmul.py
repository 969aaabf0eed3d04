"""PyTorch's side of `cargo run --release -p trainer --example matmul`: the default model's linear
layers at a replica's share of a batch (2,080 and 4,160 rows), through `nn.Linear` (with its bias,
as the model runs them) and `@`, in GFLOP/s.

    RAYON_NUM_THREADS=1 ...  # the Rust side on one thread; here: --threads 1
    .venv/bin/python bench/matmul.py --threads 1
    ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        .venv/bin/python bench/matmul.py --threads 1   # as on a CPU without AVX-512
"""
import argparse

import torch

from pytorch_bench import mean_seconds


def seconds(f):
    # oneDNN and MKL settle in over the first calls of a shape: warm up longer than the Rust side.
    return mean_seconds(10, 100, f)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    torch.set_num_threads(p.parse_args().threads)
    print(f"torch {torch.__version__}, vector unit {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads")
    with torch.inference_mode():
        for rows in (2080, 4160):
            for k, n in ((96, 288), (96, 96), (96, 192), (192, 96)):
                flops = 2.0 * rows * k * n
                x, w = torch.randn(rows, k), torch.randn(k, n)
                linear = torch.nn.Linear(k, n)
                print(f"[{rows}, {k}] x [{k}, {n}]: nn.Linear {flops / seconds(lambda: linear(x)) / 1e9:6.1f} "
                      f"GFLOP/s, @ {flops / seconds(lambda: x @ w) / 1e9:6.1f} GFLOP/s")


if __name__ == "__main__":
    main()
