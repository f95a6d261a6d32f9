"""The full probe protocol for one method, before (plain ridge CV + scikit-learn MLP) and after (`probes.evaluate`).

Run: .venv/bin/python benchmarks/probes.py [--threads 2] [--n 10000] [--seeds 5]

One featurizer: an untrained 256-d location encoder (SH degree 15 -> SIREN 2x512 -> 256, `torch.manual_seed(0)`),
features under `torch.no_grad`, on the four real tasks at `n` points each. The protocol: 4 tasks x 2 splits (blocked,
random) x 3 label fractions (0.01, 0.1, 1.0) x `seeds` seeds, the linear probe at every fraction, the MLP probe at 1.0.
Before and after run interleaved, task by task, so that a busy machine slows both alike; the float32 matmul speed
(GFLOP/s, 2048^2 sgemm in torch) is measured at the start and the end of the same run, so the seconds can be read as
ratios. Prints markdown tables: seconds per part, and mean scores per task of both paths. Not a test.
"""
import argparse, time, warnings
import numpy as np, torch
from threadpoolctl import threadpool_limits
from location_tying.location_encoder import make_location_encoder
from location_tying.data import load_task, TASKS
from location_tying import probes as P


def sgemm_gflops(n=2048, reps=5):
    "Float32 matmul speed of this machine now, GFLOP/s (best of `reps`)."
    a = torch.randn(n, n); a @ a; best = np.inf
    for _ in range(reps): t0 = time.perf_counter(); a @ a; best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


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


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--threads', type=int, default=2); ap.add_argument('--n', type=int, default=10_000)
    ap.add_argument('--seeds', type=int, default=5); a = ap.parse_args()
    torch.set_num_threads(a.threads); seeds = range(a.seeds)
    with threadpool_limits(a.threads):
        gf0 = sgemm_gflops()
        torch.manual_seed(0)
        enc = make_location_encoder(positional='sh', network='siren', degree=15, hidden=512, layers=2, dim=256).eval()
        tasks = [load_task(t, n=a.n, seed=12345) for t in TASKS]
        tb, ta, rows, feats = dict(features=0.0, linear=0.0, mlp=0.0), dict(features=0.0, linear=0.0, mlp=0.0), [], {}
        for task in tasks:
            t0 = time.perf_counter()
            with torch.no_grad(): X = enc(torch.as_tensor(task.lonlat, dtype=torch.float32)).numpy().astype(np.float64)
            dt = time.perf_counter() - t0; tb['features'] += dt; ta['features'] += dt  # the same features for both paths
            feats[task.name] = X
            sb, sa = before(X, task, seeds, tb), after(X, task, seeds, ta, a.threads)
            for k in sorted(sb, key=str):
                rows.append((task.name, *k, np.mean(sb[k]), np.std(sb[k], ddof=1), np.mean(sa[k]), np.std(sa[k], ddof=1)))
        t0 = time.perf_counter()  # the whole protocol as `reproduce` runs it: one call, all tasks and probes, fits spread over the threads
        P.evaluate(lambda ll: next(feats[t.name] for t in tasks if len(t.lonlat) == len(ll) and np.array_equal(t.lonlat, ll)), tasks,
                   seeds=tuple(seeds), threads=a.threads)
        whole = time.perf_counter() - t0
        gf1 = sgemm_gflops()
    print(f"\n{len(tasks)} tasks x 2 splits x 3 fractions x {a.seeds} seeds, n={a.n}, 256-d, {a.threads} threads; "
          f"float32 matmul {gf0:.0f} GFLOP/s at the start, {gf1:.0f} at the end\n")
    print('| part | before (s) | after (s) | speed-up |\n|---|---|---|---|')
    for k in tb: print(f"| {k} | {tb[k]:.2f} | {ta[k]:.2f} | {tb[k] / max(ta[k], 1e-9):.1f}x |")
    print(f"| total | {sum(tb.values()):.2f} | {sum(ta.values()):.2f} | {sum(tb.values()) / sum(ta.values()):.1f}x |")
    print(f"\nThe whole protocol in one `evaluate` call (both probes, all tasks, features given): {whole:.2f} s")
    print('\n| task | probe | fraction | split | before | after |\n|---|---|---|---|---|---|')
    for r in rows: print(f"| {r[0]} | {r[1]} | {r[2]:g} | {r[3]} | {r[4]:.3f} ± {r[5]:.3f} | {r[6]:.3f} ± {r[7]:.3f} |")


if __name__ == '__main__': main()
