"""Speed of every location encoder in the zoo: 100,000 points embedded without gradients, in float32.

Run: .venv/bin/python benchmarks/encoders.py [--n 100000] [--repeats 3] [--hidden 512] [--layers 2] [--dim 256]

Every recipe of `location_tying.location_encoder.LOCATION_ENCODERS` is built at TrainConfig's sizes (hidden 512, two
layers, dim 256) and every positional encoding of `POSITIONAL_ENCODINGS` on its own (spherical harmonics at degree 10, 20 and 40). Each embeds the same 100,000
area-uniform points in one call under `torch.no_grad()`; the time is the best of `--repeats` calls, the encoders
taking turns so that load on a shared machine hits them alike. The matrix-multiply FLOPs of one call are counted by
torch's FlopCounterMode (mm, addmm, bmm, einsum: 2·m·n·k each; sines, exponentials and gathers are not counted),
and the achieved FLOP/s is quoted as a fraction of this machine's float32 matmul speed, a 2048 × 2048 sgemm timed in
the same run, in the same turns. A row with under 1 GFLOP per call has little arithmetic: its seconds are what
matter (target < 0.5 s). Prints a markdown table. Not a test.
"""
import argparse, time
import torch
from torch.utils.flop_counter import FlopCounterMode
from location_tying.coords import sample_sphere
from location_tying.location_encoder import make_location_encoder, location_encoder_recipe, LOCATION_ENCODERS, POSITIONAL_ENCODINGS


def sgemm(n=2048):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return (lambda: a @ b), 2 * n ** 3


def flops(fn):
    "Matrix-multiply FLOPs of one call of `fn`."
    with FlopCounterMode(display=False) as counter: fn()
    return counter.get_total_flops()


def encoders(args):
    "name → (module, kind): every recipe at the given sizes, then every positional encoding alone."
    out = {}
    for name in LOCATION_ENCODERS:
        torch.manual_seed(0)
        out[name] = (make_location_encoder(**location_encoder_recipe(name, hidden=args.hidden, layers=args.layers, dim=args.dim)).eval(), 'recipe')
    for name, build in POSITIONAL_ENCODINGS.items():
        for degree in ((10, 20, 40) if name == 'sh' else (10,)):
            torch.manual_seed(0)
            out[f'{name}{degree if name == "sh" else ""} (encoding only)'] = (build(degree=degree).eval(), 'encoding')
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=100_000)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--hidden', type=int, default=512)
    p.add_argument('--layers', type=int, default=2)
    p.add_argument('--dim', type=int, default=256)
    args = p.parse_args()
    pts = torch.tensor(sample_sphere(args.n, seed=0), dtype=torch.float32)
    mm, mm_flops = sgemm()
    fns = {'sgemm 2048²': (mm, mm_flops)}
    with torch.no_grad():
        for name, (enc, _) in encoders(args).items():
            fn = (lambda enc=enc: enc(pts))
            fns[name] = (fn, flops(fn))
        best = {k: float('inf') for k in fns}
        for k, (fn, _) in fns.items(): fn()  # warm-up
        for _ in range(args.repeats):
            for k, (fn, _) in fns.items():
                t = time.perf_counter(); fn(); best[k] = min(best[k], time.perf_counter() - t)
    peak = mm_flops / best['sgemm 2048²']
    print(f'{args.n:,} points, float32, no_grad, {torch.get_num_threads()} threads; sgemm 2048²: {peak / 1e9:.0f} GFLOP/s '
          f'(best of {args.repeats}); recipes at hidden {args.hidden}, layers {args.layers}, dim {args.dim}\n')
    print('| encoder | seconds | matmul GFLOP | GFLOP/s | fraction of sgemm | target |')
    print('|---|---|---|---|---|---|')
    for k, (fn, f) in fns.items():
        if k.startswith('sgemm'): continue
        s = best[k]
        heavy = f >= 1e9
        target = ('met' if f / s >= 0.5 * peak else 'not met') + ' (≥ 50 %)' if heavy else ('met' if s < 0.5 else 'not met') + ' (< 0.5 s)'
        print(f'| {k} | {s:.3f} | {f / 1e9:.1f} | {f / s / 1e9:.1f} | {f / s / peak:.0%} | {target} |')


if __name__ == '__main__':
    main()
