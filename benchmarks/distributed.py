"""Throughput of one `location-tying pretrain` on 1 process against `torchrun` on 2 processes (gloo, CPU), default MELT
configuration unless told otherwise. Each run is a real CLI process; training throughput is the global rows of all
steps over the summed step times of history.csv (rank 0's step time includes waiting for the other process), wall time
includes start-up and each epoch's data loading (every process loads the epoch's datasets).

    python benchmarks/distributed.py [--epochs 8] [--repeats 1] [--out /tmp/bench-distributed] [-- extra pretrain options]

With --repeats N the three runs are interleaved N times and each keeps its best training throughput (the machine is
shared: the best of interleaved runs is the least disturbed one).
"""
import argparse, os, subprocess, sys, time
from pathlib import Path
import pandas as pd

RUNS = {  # name -> (launcher argv prefix, OMP threads per process)
    '1 process, 1 thread': ([sys.executable], 1),
    '1 process, 2 threads': ([sys.executable], 2),
    '2 processes (torchrun, gloo), 1 thread each': ([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2'], 1),
}

def run(name, out, epochs, extra):
    launcher, threads = RUNS[name]
    cmd = [*launcher, '-m', 'location_tying.cli', 'pretrain', '--out', str(out), '--epochs', str(epochs), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'OMP_NUM_THREADS': str(threads)})
    wall = time.perf_counter() - t0
    if proc.returncode: sys.exit(f'{name} failed:\n{proc.stderr[-3000:]}')
    hist = pd.read_csv(out / 'history.csv')
    return dict(run=name, epochs=hist.epoch.nunique(), steps=len(hist), rows=int(hist.rows.sum()), train_s=hist.seconds.sum(),
                wall_s=wall, rows_per_s=hist.rows.sum() / hist.seconds.sum(), final_loss=hist[hist.epoch == hist.epoch.max()].loss.mean())

def main(epochs, repeats, out, extra):
    rows = [run(name, Path(out) / f'run{i}-{k}', epochs, extra) for k in range(repeats) for i, name in enumerate(RUNS)]
    df = pd.DataFrame(rows).sort_values('rows_per_s', ascending=False).drop_duplicates('run').set_index('run').loc[list(RUNS)].reset_index()
    base = df.rows_per_s.iloc[0]
    print(f'cores: {os.cpu_count()}; pretrain {" ".join(extra) or "(default MELT configuration)"}, {epochs} epochs, best of {repeats}')
    print('| run | steps | train s | rows/s | vs 1 process, 1 thread | wall s | last-epoch loss |')
    print('|---|---|---|---|---|---|---|')
    for r in df.itertuples():
        print(f'| {r.run} | {r.steps} | {r.train_s:.0f} | {r.rows_per_s:,.0f} | {r.rows_per_s / base:.2f}× | {r.wall_s:.0f} | {r.final_loss:.3f} |')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--epochs', type=int, default=8); p.add_argument('--repeats', type=int, default=1)
    p.add_argument('--out', default='/tmp/bench-distributed')
    p.add_argument('extra', nargs='*', help='more pretrain options, after --')
    a = p.parse_args()
    main(a.epochs, a.repeats, a.out, a.extra)
