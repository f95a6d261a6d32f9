"""Training throughput: a MELT step at batch 2048 with all four modalities, the location encoder alone, and the
step's achieved FLOP/s against this machine's measured matmul FLOP/s.

    python benchmarks/train.py [--batch 2048] [--repeats 10]
"""
import argparse, time
import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from location_tying.data import MODALITIES, load_modality
from location_tying.melt import JointBatchSampler, make_joint_batch, train_step
from location_tying.train import TrainConfig, build_models, build_optimizers

def timed(fn, repeats):
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats): fn()
    return (time.perf_counter() - t0) / repeats

def flops(fn):
    with FlopCounterMode(display=False) as counter: fn()
    return counter.get_total_flops()

def matmul_flops_per_s(n=2048, repeats=20):
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n ** 3 / timed(lambda: a @ b, repeats)

def main(batch, repeats):
    cfg = TrainConfig(batch_size=batch)
    models, opts = build_models(cfg), None
    opts = build_optimizers(cfg, models)
    data = {m: load_modality(m, n=max(batch, 4096), seed=0, patch_px=cfg.patch_px) for m in MODALITIES}
    plan = JointBatchSampler({m: len(d) for m, d in data.items()}, batch).epoch(0)
    jb = make_joint_batch(data, plan[0])
    step = lambda: train_step(models, jb, list(opts.values()))
    t_step = timed(step, repeats); f_step = flops(step)
    loc = models['location']; lonlat = jb.lonlat
    def loc_only():
        loc.zero_grad(set_to_none=True); loc(lonlat).square().mean().backward()
    t_loc = timed(loc_only, repeats); f_loc = flops(loc_only)
    t_batch = timed(lambda: make_joint_batch(data, plan[1]), repeats)
    t_load = timed(lambda: load_modality('imagery', n=20_000, seed=1, patch_px=cfg.patch_px), 1)
    peak = matmul_flops_per_s()
    print(f'threads: {torch.get_num_threads()}, batch {len(jb)} ({", ".join(f"{m} {len(x)}" for m, x in zip(jb.modalities, jb.inputs))})')
    print('| what | ms | samples/s | GFLOP | GFLOP/s | % of matmul peak |')
    print('|---|---|---|---|---|---|')
    for name, t, f in [('MELT step, 4 modalities (fwd+bwd+AdamW)', t_step, f_step), ('location encoder alone (fwd+bwd)', t_loc, f_loc)]:
        print(f'| {name} | {1e3 * t:.1f} | {len(jb) / t:,.0f} | {f / 1e9:.2f} | {f / t / 1e9:.1f} | {100 * f / t / peak:.0f} % |')
    print(f'| make_joint_batch | {1e3 * t_batch:.1f} | {len(jb) / t_batch:,.0f} | | | |')
    print(f'| load_modality imagery n=20k (fresh locations) | {1e3 * t_load:.0f} | {20_000 / t_load:,.0f} | | | |')
    print(f'measured float32 matmul (2048²): {peak / 1e9:.1f} GFLOP/s')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--batch', type=int, default=2048); p.add_argument('--repeats', type=int, default=10)
    main(**vars(p.parse_args()))
