"""Visualisation speed: the 1° global embedding map (64,800 points) of an SH-L10 + SIREN encoder loaded from a
checkpoint, and UMAP of 20,000 embeddings after warm-up (numba compiled), plus the cold first call.

    python benchmarks/viz.py [--repeats 5] [--umap-n 20000] [--threads N]
"""
import argparse, tempfile, time
import numpy as np
import torch

def best(fn, repeats):
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return min(ts), float(np.median(ts))

def checkpoint(hidden, dim, out):
    from location_tying.location_encoder import make_location_encoder
    from location_tying.checkpoint import save_encoder, load_encoder
    torch.manual_seed(0)
    enc = make_location_encoder(positional='sh', network='siren', degree=10, hidden=hidden, layers=2, dim=dim)
    return load_encoder(save_encoder(out, enc, {'location_encoder': enc.config}))

def main(repeats, umap_n, threads):
    if threads: torch.set_num_threads(threads)
    from location_tying.viz import embedding_grid, embedding_rgb, land_grid, umap_reduce
    from location_tying.coords import sample_sphere
    print(f'torch threads: {torch.get_num_threads()}')
    print('| what | points | best s | median s |')
    print('|---|---|---|---|')
    for hidden, dim in [(256, 128), (512, 256)]:
        emb = checkpoint(hidden, dim, tempfile.mkdtemp())
        name = f'SH-L10 + SIREN 2×{hidden} → {dim}'
        b, m = best(lambda: embedding_grid(emb.embed, 1.0), repeats)
        print(f'| {name}: embed 1° grid | 64,800 | {b:.2f} | {m:.2f} |')
        b2, m2 = best(lambda: embedding_rgb(embedding_grid(emb.embed, 1.0)), repeats)
        print(f'| {name}: embed 1° grid + PCA → RGB | 64,800 | {b2:.2f} | {m2:.2f} |')
        if hidden == 256:
            def map_with_land(embed=emb.embed):
                grid = embedding_grid(embed, 1.0)
                return embedding_rgb(grid, land=land_grid(grid))
            b3, m3 = best(map_with_land, repeats)
            print(f'| {name}: embed + PCA → RGB + land mask + ocean shading | 64,800 | {b3:.2f} | {m3:.2f} |')
            X = emb.embed(sample_sphere(umap_n, seed=0))
    # warm-up on 5,000 points: above 4,096 points UMAP switches from exact neighbours to NN-descent, whose numba code
    # compiles on first use too; a 500-point warm-up leaves ~35 s of compilation inside the 20k timing
    t0 = time.perf_counter(); umap_reduce(X[:5000], seed=0); cold = time.perf_counter() - t0
    print(f'| UMAP first call in this process (import + numba JIT or its disk cache), 5,000 × {X.shape[1]} | 5,000 | {cold:.1f} | |')
    t0 = time.perf_counter(); umap_reduce(X, seed=0); warm = time.perf_counter() - t0
    print(f'| UMAP after warm-up, {umap_n:,} × {X.shape[1]} → 2 | {umap_n:,} | {warm:.1f} | |')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--repeats', type=int, default=5); p.add_argument('--umap-n', type=int, default=20_000)
    p.add_argument('--threads', type=int, default=0, help='torch threads (0: leave the default)')
    main(**{k.replace('-', '_'): v for k, v in vars(p.parse_args()).items()})
