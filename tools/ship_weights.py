#!/usr/bin/env python
"""Train, probe and ship pretrained location encoders as package data (location_tying/weights/NAME/), with model cards.

    nice -n 10 python tools/ship_weights.py melt-4 satclip-relief      # the shipped pair, at the quick settings
    python tools/ship_weights.py melt-4 --mode full                     # the paper's settings (4,800 steps; hours on 2 cores)
    python tools/ship_weights.py melt-4 --no-train                      # ship what runs/ship/melt-4 holds now (a run cut short)

NAME is a recipe of the experiment grid (`experiments.method_configs`) at the settings of --mode (default: quick, the
main job's: `location-tying reproduce --quick`), pre-training seed 0. The quick settings are the default because on
validation locations their encoders beat the same recipes trained at the full settings (see 20_pretrained). Each run trains in runs/ship/NAME (resumable: run the command again after an interruption),
is probed exactly as the grid probes (`probes.evaluate` on the four tasks, cached in the run folder), and its verified
encoder file is copied with card.json and README.md into location_tying/weights/NAME/ (`pretrained_encoders.ship_encoder`).
The wall time of every training session is kept in runs/ship/NAME/wall.json and summed on the card.
"""
import argparse, json, os, platform, socket, sys, time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DESCRIPTIONS = {
    'melt-4': 'MELT on imagery, relief, atmosphere and toponyms: the default recipe (SH degree 15, SIREN 2×512 → 256)',
    'satclip-relief': 'SatCLIP on shaded-relief patches alone: the single modality with the best four-task mean in the quick grid',
}

def describe(name:str, config) -> str:
    return DESCRIPTIONS.get(name) or f"{config.method} on {', '.join(config.modalities)} ({config.degree=}, {config.network})"

def machine(threads:int) -> str:
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else float('nan')
    return (f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), {threads} torch thread(s), nice {os.nice(0)}, "
            f"load average {load:.1f} when training started (other jobs shared the machine when it was above {threads})")

def train(name:str, config, run_dir:Path, threads:int) -> dict:
    "Fit (resuming), timing this session; returns wall.json's content."
    from location_tying.train import fit
    log_path = run_dir / 'wall.json'
    log = json.loads(log_path.read_text()) if log_path.exists() else {'sessions': []}
    started, words, t0 = time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), machine(threads), time.perf_counter()
    result = fit(config, out_dir=run_dir, resume=True, progress=sys.stderr.isatty())
    log['sessions'].append(dict(started=started, seconds=round(time.perf_counter() - t0, 1), steps_after=len(result.history),
                                host=socket.gethostname(), machine=words))
    log_path.write_text(json.dumps(log, indent=1) + '\n')
    return log

def probe(name:str, run_dir:Path, settings, threads:int):
    "The grid's probes of the run's encoder (cached beside it, keyed by the weights and the protocol)."
    from location_tying.checkpoint import load_encoder
    from location_tying.data import TASKS, load_task
    from location_tying.experiments import probe_key, cached_probes
    from location_tying.probes import evaluate
    tasks = [load_task(t, n=settings.task_n, seed=settings.task_seed) for t in TASKS]
    emb = load_encoder(run_dir)
    return cached_probes(run_dir / 'probes.csv', probe_key(tasks, settings, run_dir / 'encoder.safetensors'),
                         lambda: evaluate(emb.embed, tasks, splits=settings.splits, fractions=settings.fractions,
                                          seeds=settings.seeds, method=name, threads=threads))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('names', nargs='+', help='recipe names of the experiment grid, e.g. melt-4 satclip-relief')
    p.add_argument('--mode', default='quick', help="experiments.SETTINGS key (default: quick)")
    p.add_argument('--seed', type=int, default=0, help='pre-training seed (default: 0)')
    p.add_argument('--steps', type=int, help="a smaller budget than the mode's (location-encoder steps)")
    p.add_argument('--no-train', action='store_true', help='ship what the run folder holds now (e.g. a run stopped early)')
    p.add_argument('--threads', type=int, default=1, help='torch threads for training and probing (default: 1)')
    p.add_argument('--runs', type=Path, default=ROOT / 'runs' / 'ship', help='where the runs live (default: runs/ship)')
    p.add_argument('--dest', type=Path, default=ROOT / 'location_tying' / 'weights', help='package data folder')
    p.add_argument('--note', default='', help='a sentence for the card (e.g. why the budget was cut)')
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    from location_tying.experiments import SETTINGS, method_configs
    from location_tying.pretrained_encoders import ship_encoder, probe_protocol
    settings = SETTINGS[args.mode]
    configs = method_configs(settings, args.seed)
    unknown = [n for n in args.names if n not in configs]
    if unknown: p.error(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(configs)}")
    for name in args.names:
        config = configs[name] if args.steps is None else replace(configs[name], steps=args.steps)
        run_dir = args.runs / name
        log = json.loads((run_dir / 'wall.json').read_text()) if args.no_train else train(name, config, run_dir, args.threads)
        res = probe(name, run_dir, settings, args.threads)
        sessions = log['sessions']
        training = dict(wall_seconds=round(sum(s['seconds'] for s in sessions), 1), machine=sessions[0]['machine'],
                        sessions=len(sessions), note=args.note)
        folder = ship_encoder(run_dir, name, describe(name, config), res, training, probe_protocol(settings), dest=args.dest)
        size = sum(f.stat().st_size for f in folder.iterdir())
        print(f'{name}: shipped to {folder} ({size / 1e6:.1f} MB); wall time {training["wall_seconds"] / 60:.1f} min', flush=True)

if __name__ == '__main__': main()
