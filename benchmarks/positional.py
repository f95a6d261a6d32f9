"""Speed of spherical harmonics three ways, a whole encoder step, and the peak memory of a million points at degree 40.

Run: .venv/bin/python benchmarks/positional.py [--quick] [--threads N]

The table runs single-threaded (`--threads 1`, the default): on a shared machine oversubscribed OpenMP threads spin,
and sphericart opens an OpenMP parallel region on every call, so its multi-threaded timings swing by 10x or more with
the load. The column "ours, all cores" repeats our forward with torch's default thread count to show that effect.

Everything runs in one process on the same area-uniform points (prefixes of one sample), in float64, best of 7
short timings taken in turns (ours, ours in one call, recursion, then again), in calls of
2,048 points (a training batch), plus ours in one call on all of them (up to 200,000 points; there the first touch of
the fresh multi-GB output costs as much as computing it).

glibc's malloc: at degree 40 a batch's output is 27 MB. By default glibc often hands such a block back to the kernel
when it is freed, and the next call page-faults 27 MB in again (6,700 faults), which costs about as much as computing
the harmonics and swamps the comparison. The benchmark therefore sets glibc's mmap and trim thresholds to 1 GiB
(mallopt; the same as MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 in the environment) for
every method alike; `--default-malloc` skips that.
- ours: `location_tying.positional.SphericalHarmonics` (sphericart, chunked) forward;
- recursion: `location_tying.positional.sh_recursion`, the plain vectorised torch Legendre recursion
  (a Python loop over (l, m), vectorised over points);
- scipy: `scipy.special.sph_harm_y` per (l, m), real parts assembled (on a subset of the points);
- encoder: `make_location_encoder(degree=L)` (SH -> SIREN 2x256 -> 128), float32, forward + backward at batch 2048.
The peak-memory part runs first, in a subprocess, so that its peak RSS is its own (resource.getrusage's ru_maxrss, which
on Linux starts from the parent's RSS at fork, so it runs before the parent holds anything big; /proc VmHWM as a check). Prints a markdown table. Not a test.
"""
import argparse, ctypes, math, subprocess, sys, time
import numpy as np
import torch
from scipy.special import sph_harm_y
from location_tying.coords import sample_sphere
from location_tying.positional import SphericalHarmonics, sh_recursion
from location_tying.location_encoder import make_location_encoder


def batched(fn, x, batch=2048):
    "Call `fn` on consecutive batches of `x`."
    return lambda: [fn(c) for c in x.split(batch)]


def best_rate(fn, n, repeats=3):
    "Points per second of the fastest of `repeats` calls of `fn()` on `n` points."
    return best_rates({'_': (fn, n)}, repeats)['_']


def best_rates(fns, repeats=3):
    "Points per second, best of `repeats`, for each name → (fn, n); the methods take turns so load drifts hit all alike."
    for fn, n in fns.values(): fn()  # warm-up
    best = {k: 0.0 for k in fns}
    for _ in range(repeats):
        for k, (fn, n) in fns.items():
            t = time.perf_counter(); fn(); best[k] = max(best[k], n / (time.perf_counter() - t))
    return best


def sh_scipy(lonlat, degree):
    lon, lat = np.radians(lonlat).T
    theta, out = np.pi / 2 - lat, np.empty((len(lon), (degree + 1) ** 2))
    for l in range(degree + 1):
        for m in range(-l, l + 1):
            y = sph_harm_y(l, abs(m), theta, lon)
            out[:, l * l + l + m] = y.real if m == 0 else math.sqrt(2) * (-1) ** m * (y.real if m > 0 else y.imag)
    return out


def tune_malloc(threshold=1 << 30):
    "Keep freed blocks up to `threshold` bytes in the heap (glibc mallopt), so repeated batch outputs reuse warm pages."
    libc = ctypes.CDLL('libc.so.6')
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from malloc.h
    assert libc.mallopt(M_MMAP_THRESHOLD, threshold) == 1 and libc.mallopt(M_TRIM_THRESHOLD, threshold) == 1


def encoder_rate(degree, pts, batch=2048, steps=10):
    torch.manual_seed(0)
    enc = make_location_encoder(degree=degree)
    x = torch.tensor(pts[:batch], dtype=torch.float32)
    def step():
        enc.zero_grad(); enc(x).square().mean().backward()
    return best_rate(lambda: [step() for _ in range(steps)], batch * steps)


MEM_CHILD = """
import resource, sys, time, torch
from location_tying.coords import sample_sphere
from location_tying.positional import SphericalHarmonics
def hwm(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak RSS so far, bytes (Linux reports KiB)
def status(key): return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1]) * 1024
def rss(): return status('VmRSS')
n, degree = int(sys.argv[1]), int(sys.argv[2])
x = torch.tensor(sample_sphere(n, seed=0), dtype=torch.float32)
before = rss()  # (not ru_maxrss: Linux carries the parent's peak RSS over fork + exec into it)
t = time.perf_counter()
with torch.no_grad(): y = SphericalHarmonics(degree)(x)
dt, peak = time.perf_counter() - t, hwm()
assert all(torch.isfinite(c).all() for c in y.split(20_000))  # in chunks: isfinite on all of y would copy it
print(before, peak, status('VmHWM'), y.numel() * y.element_size(), dt)
"""


def peak_memory(n, degree):
    out = subprocess.run([sys.executable, '-c', MEM_CHILD, str(n), str(degree)], capture_output=True, text=True, check=True)
    before, peak, hwm, out_bytes, dt = out.stdout.split()
    return int(before), int(peak), int(hwm), int(out_bytes), float(dt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='tiny sizes, to check the script runs')
    ap.add_argument('--threads', type=int, default=1, help='torch/OpenMP threads for the table (default 1, see above)')
    ap.add_argument('--default-malloc', action='store_true', help="keep glibc's default mmap/trim thresholds (see above)")
    args = ap.parse_args()
    q = args.quick
    if not args.default_malloc: tune_malloc()
    repeats = 3 if q else 7  # best of many short timings: the machine is shared, and the best is the least disturbed
    all_cores = torch.get_num_threads()
    # sphericart's first call of a degree fixes how many threads it may use for that degree (positional.sphericart_call):
    # make it on all cores, so that the all-cores column really runs on all of them
    for degree in (10, 20, 40): SphericalHarmonics(degree)(torch.zeros(1, 2, dtype=torch.float64))
    n_mem = 20_000 if q else 1_000_000
    before, peak, hwm, out_bytes, dt = peak_memory(n_mem, 40)
    pts = sample_sphere(20_000 if q else 200_000, seed=0)
    sizes = {  # degree: (points for ours, for the recursion, for scipy)
        10: (20_000, 4_096, 500) if q else (200_000, 40_960, 4_096),
        20: (20_000, 4_096, 200) if q else (200_000, 20_480, 2_048),
        40: (10_000, 2_048, 100) if q else (40_960, 10_240, 512),
    }
    print(f"torch {torch.__version__}, {args.threads} thread(s) (all cores: {all_cores}); float64; points/s (best of {repeats}); "
          f"glibc malloc {'defaults' if args.default_malloc else 'thresholds 1 GiB'}\n")
    rows = []
    x = torch.tensor(pts, dtype=torch.float64)
    with torch.no_grad():  # ours on all cores first, without switching the thread count between timings
        all_rates = {d: best_rate(batched(SphericalHarmonics(d), x[:n]), n, repeats) for d, (n, _, _) in sizes.items()}
    torch.set_num_threads(args.threads)
    for degree, (n_ours, n_rec, n_sci) in sizes.items():
        sh = SphericalHarmonics(degree)
        with torch.no_grad():
            r = best_rates({'ours': (batched(sh, x[:n_ours]), n_ours),
                            'one': (lambda: sh(x[:n_ours]), n_ours),
                            'rec': (batched(lambda c: sh_recursion(c, degree), x[:n_rec]), n_rec)}, repeats)
        ours, ours_one, ours_all, rec = r['ours'], r['one'], all_rates[degree], r['rec']
        sci = best_rate(lambda: [sh_scipy(c, degree) for c in np.array_split(pts[:n_sci], max(1, n_sci // 2048))], n_sci, repeats=1)
        enc = encoder_rate(degree, pts, steps=3 if q else 10)
        rows.append((degree, ours, ours_one, ours_all, rec, sci, enc))
        print(f"degree {degree}: ours {ours:,.0f}/s (one call {ours_one:,.0f}/s, {all_cores} threads {ours_all:,.0f}/s), "
              f"recursion {rec:,.0f}/s, scipy {sci:,.0f}/s, encoder {enc:,.0f}/s", flush=True)
    print(f"\n| degree | features | ours (sphericart) | ours, one call on all points | ours, all cores ({all_cores} threads) | plain torch recursion | scipy per (l, m) | ours / recursion | ours / scipy | encoder fwd+bwd, batch 2048 (float32) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d, o, o1, oa, r, s_, e in rows:
        print(f"| {d} | {(d + 1) ** 2:,} | {o / 1e3:,.0f} k/s | {o1 / 1e3:,.0f} k/s | {oa / 1e3:,.0f} k/s | {r / 1e3:,.1f} k/s | {s_ / 1e3:,.2f} k/s | {o / r:,.1f}× | {o / s_:,.0f}× | {e / 1e3:,.1f} k/s |")
    print(f"\nPeak RSS, {n_mem:,} points at degree 40 (float32 in and out, chunks of 20,000 computed in float64): "
          f"{peak / 2**30:.2f} GiB by getrusage, {hwm / 2**30:.2f} GiB by /proc VmHWM (RSS just before the call {before / 2**30:.2f} GiB; the output alone {out_bytes / 2**30:.2f} GiB; "
          f"{dt:.1f} s, {n_mem / dt:,.0f} points/s)")


if __name__ == '__main__': main()
