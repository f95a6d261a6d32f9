"""The full probe protocol for one method: the plain path against `probes.evaluate`, and `evaluate` against an earlier revision of it.

Run: .venv/bin/python benchmarks/probes.py [--threads 2] [--n 10000] [--seeds 5] [--baseline main] [--reps 3] [--no-plain]

One featurizer: an untrained 256-d location encoder (SH degree 15 -> SIREN 2x512 -> 256, `torch.manual_seed(0)`),
features under `torch.no_grad`, on the four real tasks at `n` points each. The protocol: 4 tasks x 2 splits (blocked,
random) x 3 label fractions (0.01, 0.1, 1.0) x `seeds` seeds, the linear probe at every fraction, the MLP probe at 1.0.

1. Per part (skip with --no-plain): the plain path (the plain α search + `ridge_path`, scikit-learn's MLP) against
   `evaluate`, task by task and interleaved, so that a busy machine slows both alike.
2. The whole protocol as the experiments run it (one `evaluate` call, both probes, all tasks), this checkout against
   `location_tying/probes.py` of the git revision `--baseline`, alternated `--reps` times, on `--threads` workers and on
   one: wall seconds (median) and CPU seconds (this process and its worker processes), so the ratios can be read on a
   busy machine too; then how far the scores moved: the largest |difference| per task and probe (the linear probe should
   agree to rounding), and the MLP's mean per task and split beside its spread over seeds.
The float32 matmul speed (GFLOP/s, 2048^2 sgemm in torch) is measured at the start and the end, and the CPU and
NumPy's BLAS kernels are named. Prints markdown. Not a test.
"""
import argparse, importlib.util, os, subprocess, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, pandas as pd, torch
from threadpoolctl import threadpool_limits, threadpool_info
from location_tying.location_encoder import make_location_encoder
from location_tying.data import load_task, TASKS
from location_tying import probes as P


def sgemm_gflops(n=2048, reps=5):
    "Float32 matmul speed of this machine now, GFLOP/s (best of `reps`)."
    a = torch.randn(n, n); a @ a; best = np.inf
    for _ in range(reps): t0 = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def machine() -> str:
    "The CPU's model name and the kernels the BLAS libraries (NumPy's, SciPy's) chose for it: which machine gave the numbers."
    try: model = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration): model = 'unknown CPU'
    blas = dict.fromkeys(f"{i['internal_api']} {i.get('architecture', '')}".strip() for i in threadpool_info() if i['user_api'] == 'blas')
    return f"{model}, {os.cpu_count()} cores; BLAS kernels: {', '.join(blas) or 'unknown'}"


def baseline_module(rev):
    "location_tying/probes.py as it was at git revision `rev`, imported beside the current one."
    src = subprocess.run(['git', 'show', f'{rev}:location_tying/probes.py'], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    path = Path(tempfile.mkdtemp()) / 'probes_baseline.py'; path.write_text(src)
    spec = importlib.util.spec_from_file_location('location_tying._probes_baseline', path)
    mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)
    return mod


def linear_reference(X_train, y_train, X_test, kind, folds):
    "The plain linear probe: α by `_cv_alpha` (one eigendecomposition per fold), the fit from `ridge_path`."
    (X, Xt), _ = P._standardise(np.asarray(X_train, float), np.asarray(X_test, float))
    if kind == 'regression': (ys,), (mu, sd) = P._standardise(np.asarray(y_train, float))
    else: ys = np.asarray(y_train)
    Y, classes = P._targets(ys, kind)
    alpha = P._cv_alpha(X, Y, Y.argmax(1) if kind == 'classification' else None, kind, folds, P.ALPHAS)
    W, b = P.ridge_path(X, Y, [alpha]); out = Xt @ W[0] + b[0]
    return classes[out.argmax(1)] if kind == 'classification' else out[:, 0] * sd + mu


def mlp_reference(X_train, y_train, X_test, kind, seed):
    "The scikit-learn MLP probe: 64 ReLU units, Adam 3e-3, batch 512, early stopping on 10 % (patience 5), float32."
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    (X, Xt), _ = P._standardise(np.asarray(X_train, float), np.asarray(X_test, float))
    kw = dict(hidden_layer_sizes=(64,), early_stopping=True, n_iter_no_change=5, max_iter=200, batch_size=min(512, len(X)),
              learning_rate_init=3e-3, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if kind == 'classification': return MLPClassifier(**kw).fit(X.astype(np.float32), y_train).predict(Xt.astype(np.float32))
        (ys,), (mu, sd) = P._standardise(np.asarray(y_train, float))
        return MLPRegressor(**kw).fit(X.astype(np.float32), ys.astype(np.float32)).predict(Xt.astype(np.float32)) * sd + mu


def before(X, task, seeds, t):
    "Reference path, timing linear and MLP separately into `t`; returns {(probe, split): [primary metric per seed]}."
    lonlat, y, met, out = task.lonlat, np.asarray(task.y), P.METRICS[task.kind][P.PRIMARY[task.kind]], {}
    for split in ('blocked', 'random'):
        for seed in seeds:
            tr_all, te = P.split_indices(lonlat, split, seed)
            for fr in (0.01, 0.1, 1.0):
                tr = P.subsample_labels(tr_all, fr, seed, y=y if task.kind == 'classification' else None)
                folds = P.inner_folds(lonlat[tr], split, seed)
                t0 = time.perf_counter(); p = linear_reference(X[tr], y[tr], X[te], task.kind, folds); t['linear'] += time.perf_counter() - t0
                out.setdefault(('linear', fr, split), []).append(met(y[te], p))
                if fr == 1.0:
                    t0 = time.perf_counter(); p = mlp_reference(X[tr], y[tr], X[te], task.kind, seed); t['mlp'] += time.perf_counter() - t0
                    out.setdefault(('mlp', fr, split), []).append(met(y[te], p))
    return out


def after(X, task, seeds, t, threads):
    "Exported path: `evaluate` once per probe and task (features passed through), timed per probe."
    out = {}
    for probe in ('linear', 'mlp'):
        t0 = time.perf_counter()
        r = P.evaluate(lambda ll: X, [task], seeds=tuple(seeds), probes=(probe,), threads=threads).df
        t[probe] += time.perf_counter() - t0
        r = r[r.metric == P.PRIMARY[task.kind]]
        for (fr, split), g in r.groupby(['fraction', 'split']): out[(probe, fr, split)] = list(g.sort_values('seed').value)
    return out


def per_part(tasks, feats, seeds, threads):
    "Table 1: seconds per part (features, linear, MLP) of the plain path and of `evaluate`, and mean scores per task of both."
    tb, ta, rows = dict(features=0.0, linear=0.0, mlp=0.0), dict(features=0.0, linear=0.0, mlp=0.0), []
    for task in tasks:
        tb['features'] += feats[task.name][1]; ta['features'] += feats[task.name][1]  # the same features for both paths
        X = feats[task.name][0]; sb, sa = before(X, task, seeds, tb), after(X, task, seeds, ta, threads)
        for k in sorted(sb, key=str): rows.append((task.name, *k, np.mean(sb[k]), np.std(sb[k], ddof=1), np.mean(sa[k]), np.std(sa[k], ddof=1)))
    print('| part | plain (s) | `evaluate` (s) | speed-up |\n|---|---|---|---|')
    for k in tb: print(f"| {k} | {tb[k]:.2f} | {ta[k]:.2f} | {tb[k] / max(ta[k], 1e-9):.1f}x |")
    print(f"| total | {sum(tb.values()):.2f} | {sum(ta.values()):.2f} | {sum(tb.values()) / sum(ta.values()):.1f}x |")
    print('\n| task | probe | fraction | split | plain | `evaluate` |\n|---|---|---|---|---|---|')
    for r in rows: print(f"| {r[0]} | {r[1]} | {r[2]:g} | {r[3]} | {r[4]:.3f} ± {r[5]:.3f} | {r[6]:.3f} ± {r[7]:.3f} |")


def cpu_seconds():
    t = os.times(); return t.user + t.system + t.children_user + t.children_system


def whole(modules, tasks, featurize, seeds, workers, reps):
    "Wall and CPU seconds of one `evaluate` call per module, alternated `reps` times; the results of the last rep."
    wall, cpu, res = {m: [] for m in modules}, {m: [] for m in modules}, {}
    for rep in range(reps):
        for name in (list(modules) if rep % 2 == 0 else list(modules)[::-1]):
            c0, t0 = cpu_seconds(), time.perf_counter()
            res[name] = modules[name].evaluate(featurize, tasks, seeds=tuple(seeds), threads=workers).df
            wall[name].append(time.perf_counter() - t0); cpu[name].append(cpu_seconds() - c0)
    return {m: np.median(v) for m, v in wall.items()}, {m: np.median(v) for m, v in cpu.items()}, res


def agreement(old, new):
    "Largest |difference| per task and probe (all metrics' rows), and the MLP's primary metric per task and split: both means, spreads over seeds."
    assert (old.drop(columns='value').values == new.drop(columns='value').values).all(), 'the two revisions return different rows'
    d = old.assign(new=new.value.values, diff=(new.value.values - old.value.values))
    print('\n| task | largest abs. difference, linear (any metric) | MLP, primary metric |\n|---|---|---|')
    for task, g in d.groupby('task', sort=False):
        pm = g.metric.isin(list(P.PRIMARY.values()))
        print(f"| {task} | {g[g.probe == 'linear']['diff'].abs().max():.1e} | {g[(g.probe == 'mlp') & pm]['diff'].abs().max():.3f} |")
    m = d[(d.probe == 'mlp') & d.metric.isin(list(P.PRIMARY.values()))].groupby(['task', 'split'], sort=False)
    print('\n| task | split | MLP, baseline | MLP, this checkout |\n|---|---|---|---|')
    for (task, split), g in m:
        print(f"| {task} | {split} | {g.value.mean():.3f} ± {g.value.std(ddof=1):.3f} | {g.new.mean():.3f} ± {g.new.std(ddof=1):.3f} |")


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--threads', type=int, default=2); ap.add_argument('--n', type=int, default=10_000)
    ap.add_argument('--seeds', type=int, default=5); ap.add_argument('--baseline', default='main', help='git revision to compare with')
    ap.add_argument('--reps', type=int, default=3); ap.add_argument('--no-plain', action='store_true', help='skip table 1'); a = ap.parse_args()
    torch.set_num_threads(a.threads); seeds = range(a.seeds)
    base = baseline_module(a.baseline)
    with threadpool_limits(a.threads):
        gf0 = sgemm_gflops()
        torch.manual_seed(0)
        enc = make_location_encoder(positional='sh', network='siren', degree=15, hidden=512, layers=2, dim=256).eval()
        tasks, feats = [load_task(t, n=a.n, seed=12345) for t in TASKS], {}
        for task in tasks:
            t0 = time.perf_counter()
            with torch.no_grad(): feats[task.name] = (enc(torch.as_tensor(task.lonlat, dtype=torch.float32)).numpy().astype(np.float64), time.perf_counter() - t0)
        featurize = lambda ll: next(feats[t.name][0] for t in tasks if len(t.lonlat) == len(ll) and np.array_equal(t.lonlat, ll))
        print(f"\n{len(tasks)} tasks x 2 splits x 3 fractions x {a.seeds} seeds, n={a.n}, 256-d, {a.threads} workers\n")
        if not a.no_plain: per_part(tasks, feats, seeds, a.threads)
        mods = {f'`{a.baseline}`': base, 'this checkout': P}
        runs = {w: whole(mods, tasks, featurize, seeds, w, a.reps) for w in sorted({a.threads, 1}, reverse=True)}
        gf1 = sgemm_gflops()
    print(f"\nThe whole protocol, one `evaluate` call (features given), median of {a.reps}, alternated:\n")
    print('| workers | revision | wall (s) | CPU (s) |\n|---|---|---|---|')
    for w, (wall, cpu, _) in runs.items():
        for m in mods: print(f"| {w} | {m} | {wall[m]:.2f} | {cpu[m]:.2f} |")
        b, n = mods; print(f"| {w} | ratio | {wall[b] / wall[n]:.2f}x | {cpu[b] / cpu[n]:.2f}x |")
    res = runs[a.threads][2]; agreement(*(res[m] for m in mods))
    print(f"\nfloat32 matmul {gf0:.0f} GFLOP/s at the start, {gf1:.0f} at the end; {machine()}")


if __name__ == '__main__': main()
