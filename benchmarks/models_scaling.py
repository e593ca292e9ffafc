"""Forward time and peak memory of every model family against channel count and image size.

Run: ``.venv/bin/python benchmarks/models_scaling.py [--quick]``.

For each registered family (its ``<prefix>test`` preset, batch 2, inference) the script measures the
forward CPU time (best of a few runs, 1 thread by default) and the peak resident memory added by the forward pass (Linux
VmHWM, reset through ``/proc/self/clear_refs`` before each run; glibc is told to serve every large
block by mmap so freed memory is not silently reused). It fits the growth exponent ``k`` of
``cost ~ C^k`` (log-log least squares over the larger channel counts) and checks two targets:

- LESS ViT peak memory grows about linearly in C (exponent within [0.75, 1.25]);
- ChannelViT's fused attention is at least 3x faster than naive attention (explicit ``q k^T``
  softmax) at >= 2000 tokens, both computed here, in this process, on ChannelViT-S shapes.

Exit status 1 if a check fails. All numbers are relative to runs in this same process.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable

import numpy as np

if __name__ == "__main__" and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import torch
import torch.nn.functional as F

from hyperplex.common.models import create_model, list_models

WAVELENGTHS = (400.0, 2500.0)


# ---------------------------------------------------------------------------- measuring
def _status_kb(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"{key} not in /proc/self/status")


def peak_mib(fn: Callable[[], object]) -> float:
    """Peak resident memory (MiB) added while ``fn`` runs."""
    gc.collect()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset VmHWM to the current RSS
    before = _status_kb("VmRSS")
    fn()
    return max(_status_kb("VmHWM") - before, 0) / 1024


def best_time(fn: Callable[[], object], repeats: int, budget_s: float = 0.5) -> float:
    """Best CPU time of this process after one warm-up: at least ``repeats`` runs, more (up to 10)
    while under ``budget_s``.

    CPU time (``time.process_time``, torch limited to ``--threads`` threads) rather than wall time,
    so that other processes on a shared machine do not distort the comparison.
    """
    fn()
    times: list[float] = []
    while len(times) < repeats or (sum(times) < budget_s and len(times) < 10):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def exponent(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) against log(x)."""
    return float(np.polyfit(np.log(xs), np.log(np.maximum(ys, 1e-9)), 1)[0])


# ---------------------------------------------------------------------------- families
def _wavelengths(c: int) -> list[float]:
    return np.linspace(*WAVELENGTHS, c).tolist()


def _names(c: int) -> list[str]:
    return [f"c{i}" for i in range(c)]


# prefix -> (preset, overrides for C channels, channels for C, sweeps channels?)
FAMILIES: dict[str, tuple[str, Callable[[int], dict], Callable[[int], list], bool]] = {
    "channelvit": ("channelvit_test", lambda c: {"in_chans": c}, _names, True),
    "chadavit": ("chadavit_test", lambda c: {"max_channels": c}, _names, True),
    "lessvit": ("lessvit_test", lambda c: {}, _wavelengths, True),
    "hypersegformer": ("hypersegformer_test", lambda c: {"in_chans": c}, _wavelengths, True),
    "hyperefficientvit": ("hyperefficientvit_test", lambda c: {"in_chans": c}, _wavelengths, True),
    "miphei": ("miphei_test", lambda c: {}, lambda c: None, False),  # RGB in, markers out
}


def available_families() -> dict[str, tuple]:
    """The families whose test preset is registered."""
    registered = set(list_models())
    return {k: v for k, v in FAMILIES.items() if v[0] in registered}


def measure(family: str, channels: int, size: int, repeats: int, batch: int = 2) -> tuple[float, float]:
    """(seconds, peak MiB) of one inference forward pass of a batch."""
    preset, overrides, make_channels, _ = FAMILIES[family]
    torch.manual_seed(0)
    model = create_model(preset, **overrides(channels)).eval()
    x = torch.randn(batch, channels, size, size)
    chans = make_channels(channels)

    def run() -> object:
        with torch.no_grad():
            return model(x, chans)

    run()  # warm-up: one-time allocations (kernels, thread pools) are not the model's
    memory = peak_mib(run)
    return best_time(run, repeats), memory


# ---------------------------------------------------------------------------- attention check
def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **_: object) -> torch.Tensor:
    """Reference attention that materialises the (L, L) matrix."""
    return ((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5).softmax(dim=-1) @ v


def attention_check(tokens: list[int], repeats: int) -> list[tuple[int, float, float]]:
    """Fused vs naive attention on ChannelViT-S shapes (6 heads x 64): (L, fused s, naive s)."""
    rows = []
    for length in tokens:
        q, k, v = (torch.randn(1, 6, length, 64) for _ in range(3))
        with torch.no_grad():
            fused = best_time(lambda q=q, k=k, v=v: F.scaled_dot_product_attention(q, k, v), repeats)
            naive = best_time(lambda q=q, k=k, v=v: naive_attention(q, k, v), repeats)
        rows.append((length, fused, naive))
    return rows


def model_attention_ratio(repeats: int) -> tuple[int, float, float]:
    """Whole ChannelViT-S/8 forward (8 channels, 128 px: 2049 tokens) with fused vs naive attention."""
    import hyperplex.common.layers.attention as attention_module

    torch.manual_seed(0)
    model = create_model("channelvit_small_patch8", img_size=128, depth=2).eval()
    x = torch.randn(1, 8, 128, 128)

    def run() -> object:
        with torch.no_grad():
            return model(x, _names(8))

    fused = best_time(run, repeats)
    original = attention_module.F
    attention_module.F = type("NaiveF", (), {"scaled_dot_product_attention": staticmethod(naive_attention)})
    try:
        naive = best_time(run, repeats)
    finally:
        attention_module.F = original
    return model.num_tokens(8, 128), fused, naive


# ---------------------------------------------------------------------------- report
def _sweep(label: str, families: dict, values: list[int], run: Callable[[str, int], tuple[float, float]]) -> dict:
    """Measure ``run(family, value)`` for every value; print and return (value, seconds, MiB) rows per family."""
    print(f"{'family':<18}{label:>6}{'cpu ms':>12}{'peak MiB':>12}")
    results = {}
    for family in families:
        rows = []
        for v in values:
            seconds, mib = run(family, v)
            rows.append((v, seconds, mib))
            print(f"{family:<18}{v:>6}{seconds * 1e3:>12.1f}{mib:>12.1f}", flush=True)
        results[family] = rows
    return results


def channel_sweep(families: dict, counts: list[int], size: int, repeats: int) -> dict[str, list]:
    """Print and return (C, seconds, MiB) rows per channel-adaptive family."""
    print(f"\n== forward vs channel count (batch 2, {size}x{size} px, test presets) ==")
    adaptive = {f: spec for f, spec in families.items() if spec[3]}
    return _sweep("C", adaptive, counts, lambda family, c: measure(family, c, size, repeats))


def size_sweep(families: dict, sizes: list[int], channels: int, repeats: int) -> dict[str, list]:
    """Print and return (size, seconds, MiB) rows per family."""
    print(f"\n== forward vs image size (batch 2, {channels} channels; MIPHEI: RGB) ==")
    return _sweep(
        "size", families, sizes, lambda family, s: measure(family, channels if families[family][3] else 3, s, repeats)
    )


def print_exponents(results: dict[str, list], what: str, tail: int) -> dict[str, tuple[float, float]]:
    """Fit and print growth exponents over the last ``tail`` points."""
    print(f"\n== growth exponent k (cost ~ {what}^k, fitted over the {tail} largest {what}) ==")
    fitted = {}
    for family, rows in results.items():
        xs, ts, ms = zip(*rows[-tail:], strict=True)
        fitted[family] = (exponent(xs, ts), exponent(xs, ms))
        print(f"{family:<18} time k = {fitted[family][0]:5.2f}   memory k = {fitted[family][1]:5.2f}")
    return fitted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer points and repeats")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (CPU time is measured)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 3
    counts = [3, 12, 48, 285] if args.quick else [3, 8, 24, 72, 150, 285]
    sizes = [32, 64, 128] if args.quick else [32, 64, 128, 256]
    families = available_families()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; families: {', '.join(families)}")
    by_channels = channel_sweep(families, counts, 64, repeats)
    fit_c = print_exponents(by_channels, "C", tail=3)
    by_size = size_sweep(families, sizes, 8, repeats)
    print_exponents(by_size, "image side", tail=3)
    ok = True
    if "lessvit" in fit_c:
        k = fit_c["lessvit"][1]
        passed = 0.75 <= k <= 1.25
        ok &= passed
        print(f"\nCHECK LESS ViT memory ~ C^{k:.2f} (target: about linear, k in [0.75, 1.25]): {_verdict(passed)}")
    print("\n== ChannelViT attention: fused SDPA vs naive softmax(q k^T) v, ChannelViT-S shapes ==")
    for length, fused, naive in attention_check([2049, 4097], repeats):
        passed = naive / fused >= 3.0
        ok &= passed
        print(f"L={length:>5}: fused {fused * 1e3:8.1f} ms, naive {naive * 1e3:8.1f} ms, "
              f"speed-up {naive / fused:4.1f}x (target >= 3x): {_verdict(passed)}")  # fmt: skip
    length, fused, naive = model_attention_ratio(repeats)
    print(f"whole ChannelViT-S/8 forward (2 blocks, {length} tokens): fused {fused * 1e3:.0f} ms, "
          f"naive {naive * 1e3:.0f} ms, {naive / fused:.1f}x (information; MLPs are shared)")  # fmt: skip
    return 0 if ok else 1


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


if __name__ == "__main__":
    sys.exit(main())
