"""Hostile input, one case per line: what a user might pass to `embed`, `load_encoder`, `fit` and the `location-tying`
command, and the one clear error (or the correct handling) each must get. A crash, a traceback or a silently wrong
result is a failure here."""
import contextlib, io, json, os, shutil, signal, subprocess, sys, time, warnings
from pathlib import Path
from unittest import mock
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from location_tying.checkpoint import save_encoder, save_tensors, load_encoder, write_set, encoder_files, tensors_from_bytes
from location_tying.cli import main
from location_tying.coords import PLACES
from location_tying.location_encoder import make_location_encoder
from location_tying.train import TrainConfig, fit, _checkpoint, build_models, build_optimizers
from location_tying.melt import NonFiniteLossError

HAMBURG = [PLACES['Hamburg']]
OPTS = dict(degree=3, hidden=16, layers=1, dim=8)


@pytest.fixture(scope='module')
def enc():
    torch.manual_seed(0); return make_location_encoder(**OPTS)

@pytest.fixture(scope='module')
def emb(enc, tmp_path_factory):
    return load_encoder(save_encoder(tmp_path_factory.mktemp('enc'), enc, {'location_encoder': enc.config, 'epoch': 0}))

def refused(fn, text:str, kind=Exception):
    "`fn()` raises `kind` with `text` in its one-line message."
    with pytest.raises(kind) as e: fn()
    assert text in str(e.value), str(e.value)
    assert '\n' not in str(e.value).strip(), str(e.value)


# embed(): inputs that were unclear or silent
EMBED_CASES = [  # (case, lonlat, batch_size, expected error text or None for "equals the float64 reference")
    ('ragged list',              [[9.99, 53.55], [36.82]],                       65536, 'rectangular (N, 2)'),
    ('masked array',             np.ma.masked_values([[9.99, 999.0]], 999.0),   65536, '1 masked value(s)'),
    ('batch_size 0',             HAMBURG,                                        0,     'batch_size must be a positive integer'),
    ('batch_size -1',            HAMBURG,                                        -1,    'batch_size must be a positive integer'),
    ('batch_size 2.5',           HAMBURG,                                        2.5,   'batch_size must be a positive integer'),
    ('DataFrame lat, lon',       pd.DataFrame({'lat': [53.55], 'lon': [9.99]}), 65536, None),
    ('DataFrame LON/Latitude',   pd.DataFrame({'Latitude': [53.55], 'LON': [9.99]}), 65536, None),
    ('only a lat column named',  pd.DataFrame({'lat': [53.55], 'h': [9.99]}),   65536, 'names a latitude column but no longitude'),
]

@pytest.mark.parametrize('case,lonlat,batch_size,text', EMBED_CASES, ids=[c[0] for c in EMBED_CASES])
def test_embed(emb, case, lonlat, batch_size, text):
    if text is None: np.testing.assert_array_equal(emb.embed(lonlat, batch_size=batch_size), emb.embed(HAMBURG))
    else: refused(lambda: emb.embed(lonlat, batch_size=batch_size), text, ValueError)

def test_embed_bfloat16_is_cast(emb):
    t = torch.tensor(HAMBURG, dtype=torch.bfloat16)
    np.testing.assert_array_equal(emb.embed(t), emb.embed(t.double().numpy()))  # the rounded bfloat16 values, as float64


# load_encoder(): damaged or mistyped folders
def _folder(tmp:Path, enc, change) -> Path:
    d = save_encoder(tmp, enc, {'location_encoder': enc.config, 'epoch': 0}); change(d); return d

def _flip(d, offset=-9):
    raw = bytearray((d/'encoder.safetensors').read_bytes()); raw[offset] ^= 0x01; (d/'encoder.safetensors').write_bytes(bytes(raw))

def _header_only(d, tensors=None, **change):
    "A folder from elsewhere: encoder.safetensors alone (no config.json, no manifest), its header config changed by `change`."
    opts = json.loads((d/'config.json').read_text())['location_encoder']
    tensors = tensors if tensors is not None else load_file(d/'encoder.safetensors')
    for f in ('config.json', 'manifest.json', 'encoder.safetensors'): (d/f).unlink()
    save_tensors(d/'encoder.safetensors', tensors, {'kind': 'location_encoder', 'config': {'location_encoder': {**opts, **change}}})

def _nan(d):
    sd = load_file(d/'encoder.safetensors'); sd[next(iter(sd))].view(-1)[0] = float('nan'); _header_only(d, sd)

def _int32(d): _header_only(d, {k: v.to(torch.int32) for k, v in load_file(d/'encoder.safetensors').items()})

def _no_manifest(d): (d/'manifest.json').unlink()

LOAD_CASES = [  # (case, change to a saved folder, expected error text)
    ('one flipped byte',        _flip,                                                     'encoder.safetensors does not match manifest.json'),
    ('flipped byte in header',  lambda d: _flip(d, 20),                                    'encoder.safetensors does not match manifest.json'),
    ('truncated weights',       lambda d: (d/'encoder.safetensors').write_bytes((d/'encoder.safetensors').read_bytes()[:100]), 'does not match manifest.json'),
    ('config.json edited',      lambda d: (d/'config.json').write_text('{}'),             'config.json does not match manifest.json'),
    ('manifest garbled',        lambda d: (d/'manifest.json').write_text('{"files": '),   'manifest.json is corrupt'),
    ('NaN weight',              _nan,                                                      'NaN or inf value(s)'),
    ('int32 weights',           _int32,                                                    'has dtype torch.int32 in the file'),
    ('degree "15"',             lambda d: _header_only(d, degree='15'),                    "location_encoder.degree = '15'; it must be a positive integer"),
    ('degree 15.0',             lambda d: _header_only(d, degree=15.0),                    'location_encoder.degree = 15.0'),
    ('hidden null',             lambda d: _header_only(d, hidden=None),                    'location_encoder.hidden = None'),
    ('dim -5',                  lambda d: _header_only(d, dim=-5),                         'location_encoder.dim = -5'),
    ('config.json a JSON list', lambda d: (_no_manifest(d), (d/'config.json').write_text('[1, 2]')), 'holds a JSON list, not an object'),
    ('config.json not UTF-8',   lambda d: (_no_manifest(d), (d/'config.json').write_bytes(b'\xff\xfe{')), 'config.json is not valid JSON'),
    ('config.json a directory', lambda d: (_no_manifest(d), (d/'config.json').unlink(), (d/'config.json').mkdir()), 'is a directory, not the encoder'),
]

@pytest.mark.parametrize('case,change,text', LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_load_encoder_refuses(enc, tmp_path, case, change, text):
    d = _folder(tmp_path/'run', enc, change)
    refused(lambda: load_encoder(d), text, ValueError)

def test_flipped_byte_falls_back_to_previous_set(enc, tmp_path):
    d = _folder(tmp_path, enc, lambda d: None)
    first = load_encoder(d).embed(HAMBURG)
    with torch.no_grad(): [p.add_(1.0) for p in enc.parameters()]
    try: save_encoder(d, enc, {'location_encoder': enc.config, 'epoch': 1})
    finally:
        with torch.no_grad(): [p.sub_(1.0) for p in enc.parameters()]
    _flip(d)
    with pytest.warns(UserWarning, match='Using the previous complete checkpoint'): got = load_encoder(d)
    assert got.config['epoch'] == 0 and np.array_equal(got.embed(HAMBURG), first)

@pytest.mark.parametrize('k', range(7))
def test_killed_at_each_write_loads_a_whole_set_or_refuses(enc, tmp_path, k):
    "The k-th rename of a commit dies; a reader gets exactly the old set or the new one, or (for a first set) a clear refusal."
    sets = []
    for epoch in range(3):
        with torch.no_grad(): [p.add_(0.5) for p in enc.parameters()]
        sets.append(encoder_files(enc, {'location_encoder': enc.config, 'epoch': epoch}))
    with torch.no_grad(): [p.sub_(1.5) for p in enc.parameters()]
    for n_before in (0, 2):  # the first set of a folder, and a folder with two sets committed before
        d = tmp_path/str(n_before)
        for i in range(n_before): write_set(d, sets[i], {'epoch': i})
        calls, real = [], os.replace
        def dying(src, dst):
            calls.append(dst)
            if len(calls) == k + 1: raise KeyboardInterrupt('killed')
            real(src, dst)
        with mock.patch('os.replace', dying), contextlib.suppress(KeyboardInterrupt): write_set(d, sets[n_before], {'epoch': n_before})
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            try: got = load_encoder(d)
            except ValueError as e:
                assert n_before == 0 and 'never committed' in str(e), (k, str(e)); continue
        epoch = got.config['epoch']
        assert epoch in ({n_before - 1, n_before} if n_before else {0}), (n_before, k, epoch)
        want = tensors_from_bytes(sets[epoch]['encoder.safetensors'])[0]
        for name, v in got.model.state_dict().items(): assert torch.equal(v, want[name]), (n_before, k, name)  # never wrong weights


# fit() / TrainConfig: settings refused before any work, naming the field
CONFIG_CASES = [  # (case, TrainConfig keyword arguments, expected error text)
    ('epochs 0',              dict(epochs=0),                                'epochs must be >= 1'),
    ('epochs -1',             dict(epochs=-1),                               'epochs must be >= 1'),
    ('batch 0',               dict(batch_size=0),                            'batch_size must be >= 2'),
    ('batch 1',               dict(batch_size=1),                            'batch_size must be >= 2'),
    ('batch -4',              dict(batch_size=-4),                           'batch_size must be >= 2'),
    ('dim 0',                 dict(dim=0),                                   'dim must be >= 1'),
    ('duplicated modalities', dict(modalities=('atmosphere', 'atmosphere')), 'modalities must be distinct'),
    ('eps_km -1',             dict(eps_km=-1.0),                             'eps_km must be finite and >= 0'),
    ('lr 1e39',               dict(lr=1e39),                                 'lr must be a number in (0, 10]'),
    ('lr 1e30',               dict(lr=1e30),                                 'lr must be a number in (0, 10]'),
    ('lr inf',                dict(lr=float('inf')),                         'lr must be a number in (0, 10]'),
    ('device gpu0',           dict(device='gpu0'),                           "device 'gpu0' is not a torch device"),
    ('degree "15"',           dict(degree='15'),                             "degree must be int, got '15'"),
    ('epochs True',           dict(epochs=True),                             'epochs must be int, got True'),
    ('steps 0',               dict(steps=0),                                 'steps must be >= 1'),
    ('seed -1',               dict(seed=-1),                                 'seed must be >= 0'),
    ('snapshots "yes"',       dict(snapshots='yes'),                         "snapshots must be bool, got 'yes'"),
]

@pytest.mark.parametrize('case,kw,text', CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_config_refuses(case, kw, text): refused(lambda: TrainConfig(**kw), text, ValueError)

@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_config_refuses_missing_cuda(): refused(lambda: TrainConfig(device='cuda'), 'no CUDA GPU is visible', ValueError)

TINY = dict(method='satclip', modalities=('atmosphere',), n_per_modality=64, hidden=16, dim=8, degree=2, layers=1,
            batch_size=32, epochs=1, val_n=0, fresh_locations=False)

def test_diverged_weights_are_never_kept(tmp_path):
    "A loss can stay finite while the weights reach 1e30: that checkpoint is refused and the previous one kept."
    config = TrainConfig(**TINY); models = build_models(config); opts = build_optimizers(config, models)
    _checkpoint(tmp_path, config, models, opts, 0, [{'loss': 1.0}], [])
    with torch.no_grad(): next(models['location'].parameters()).fill_(1e30)
    refused(lambda: _checkpoint(tmp_path, config, models, opts, 1, [{'loss': 1.0}] * 2, []), 'the weights diverged', NonFiniteLossError)
    assert load_encoder(tmp_path).config['epoch'] == 0 and np.isfinite(load_encoder(tmp_path).embed(HAMBURG)).all()

def test_api_resume_on_empty_folder_trains_and_resume_on_finished_run_loads(tmp_path):
    first = fit(TrainConfig(**TINY), out_dir=tmp_path/'r', resume=True, progress=False)  # as `reproduce` calls it
    again = fit(TrainConfig(**TINY), out_dir=tmp_path/'r', resume=True, progress=False)
    assert len(first.history) == len(again.history) > 0
    for a, b in zip(first.models.parameters(), again.models.parameters()): assert torch.equal(a, b)
    refused(lambda: fit(TrainConfig(**TINY), out_dir=tmp_path/'r', progress=False), 'already holds a run (1 epoch(s) done)', FileExistsError)
    assert len(fit(TrainConfig(**TINY), out_dir=tmp_path/'r', overwrite=True, progress=False).history) == len(first.history)


# the command line: one line on stderr, exit status 2, the option named
def cli(*argv) -> tuple[int, str]:
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        try: rc = main([str(a) for a in argv])
        except SystemExit as e: rc = e.code
    return rc, err.getvalue()

S = ['--method', 'satclip', '--modalities', 'atmosphere', '--n-per-modality', '64', '--hidden', '16', '--dim', '8', '--degree', '2',
     '--val-n', '0', '--batch-size', '32']

CLI_CASES = [  # (case, arguments after `pretrain --out <run>` unless they start with a command; expected text on stderr)
    ('epochs 0',               ['--epochs', '0'],                          '--epochs: must be >= 1'),
    ('epochs -1',              ['--epochs', '-1'],                         '--epochs: must be >= 1'),
    ('batch 0',                ['--batch-size', '0'],                      '--batch-size: must be >= 2'),
    ('batch 1',                ['--batch-size', '1'],                      '--batch-size: must be >= 2'),
    ('batch -4',               ['--batch-size', '-4'],                     '--batch-size: must be >= 2'),
    ('dim 0',                  ['--dim', '0'],                             '--dim: must be >= 1'),
    ('duplicated modalities',  ['--method', 'melt', '--modalities', 'atmosphere,atmosphere'], '--modalities: must be distinct'),
    ('eps-km -1',              ['--eps-km', '-1'],                         '--eps-km: must be finite and >= 0'),
    ('lr 1e39',                ['--lr', '1e39'],                           '--lr: must be a number in (0, 10]'),
    ('lr 1e30',                ['--lr', '1e30'],                           '--lr: must be a number in (0, 10]'),
    ('device gpu0',            ['--device', 'gpu0'],                       "--device: 'gpu0' is not a torch device"),
    ('resume on empty folder', ['--resume'],                               'holds no checkpoint to resume; drop --resume'),
    ('resume and overwrite',   ['--resume', '--overwrite'],                'not allowed with argument'),
    ('data --n 0',             ['data', '--n', '0'],                       'argument --n: must be >= 1'),
    ('data --n -5',            ['data', '--n', '-5'],                      'argument --n: must be >= 1'),
]

@pytest.mark.parametrize('case,args,text', CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_one_line(tmp_path, case, args, text):
    argv = [args[0], '--out', tmp_path/'run', *args[1:]] if args[0] == 'data' else ['pretrain', '--out', tmp_path/'run', *S, *args]
    rc, err = cli(*argv)
    assert rc == 2 and text in err, (rc, err)
    assert 'Traceback' not in err and (err.count('\n') == 1 or 'usage:' in err), err

@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a GPU')
def test_cli_missing_cuda(tmp_path):
    rc, err = cli('pretrain', '--out', tmp_path, *S, '--device', 'cuda')
    assert rc == 2 and "--device: 'cuda': no CUDA GPU is visible" in err, err

@pytest.mark.parametrize('command', ['pretrain', 'data', 'reproduce'])
@pytest.mark.parametrize('where', ['is the file', 'below the file'])
def test_cli_out_is_a_file(tmp_path, command, where):
    (tmp_path/'f').write_text('x'); out = tmp_path/'f' if where == 'is the file' else tmp_path/'f'/'x'
    rc, err = cli(command, '--out', out, *(S if command == 'pretrain' else []))
    assert rc == 2 and 'is a file, not a folder' in err and err.count('\n') == 1, err

NOT_WRITABLE = [  # (case, command and its arguments; {ro} is a chmod 555 folder, {run} a finished run made read-only)
    ('pretrain, new folder under 555',  ['pretrain', '--out', '{ro}/run', *S]),
    ('pretrain, existing 555 folder',   ['pretrain', '--out', '{ro}', *S]),
    ('pretrain --resume, read-only run', ['pretrain', '--out', '{run}', *S, '--epochs', '2', '--resume']),
    ('reproduce into 555',              ['reproduce', '--out', '{ro}/results']),
    ('data into 555',                   ['data', '--out', '{ro}/maps', '--n', '10']),
]

@pytest.mark.skipif(os.geteuid() == 0 and not shutil.which('setpriv'), reason='root writes anywhere')
@pytest.mark.parametrize('case,argv', NOT_WRITABLE, ids=[c[0] for c in NOT_WRITABLE])
def test_cli_out_not_writable(tmp_path, case, argv):
    ro, run = tmp_path/'ro', tmp_path/'run'; ro.mkdir()
    if '{run}' in ' '.join(argv):
        assert cli('pretrain', '--out', run, *S, '--epochs', '1')[0] == 0
        for p in [run, *run.rglob('*')]: p.chmod(0o555 if p.is_dir() else 0o444)
    ro.chmod(0o555)
    code = "import sys; from location_tying.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, '-c', code, *[a.format(ro=ro, run=run) for a in argv]]
    if os.geteuid() == 0: cmd = ['setpriv', '--bounding-set', '-dac_override,-dac_read_search,-fowner', *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and 'cannot write there' in out.stderr and out.stderr.count('\n') == 1, out.stderr

def test_cli_out_in_sysfs():
    rc, err = cli('pretrain', '--out', '/sys/location-tying-test', *S)
    assert rc == 2 and '--out /sys/location-tying-test: cannot write there' in err and err.count('\n') == 1, err

def test_cli_existing_run_is_explicit(tmp_path):
    assert cli('pretrain', '--out', tmp_path, *S, '--epochs', '1')[0] == 0
    rc, err = cli('pretrain', '--out', tmp_path, *S, '--epochs', '1')
    assert rc == 2 and 'already holds a run (1 epoch(s) done): continue it with --resume' in err, err
    rc, err = cli('pretrain', '--out', tmp_path, *S, '--epochs', '1', '--resume')
    assert rc == 0 and 'nothing to train' in err, err
    assert cli('pretrain', '--out', tmp_path, *S, '--epochs', '1', '--overwrite')[0] == 0

def test_cli_snapshots_kept_and_overwritten(tmp_path):
    from location_tying.train import snapshots
    assert cli('pretrain', '--out', tmp_path, *S, '--epochs', '2', '--snapshots')[0] == 0
    assert [p.name for p in snapshots(tmp_path)] == ['epoch-001', 'epoch-002']
    assert cli('pretrain', '--out', tmp_path, *S, '--epochs', '1', '--overwrite')[0] == 0  # the new run keeps none
    assert snapshots(tmp_path) == [] and not (tmp_path / 'snapshots').exists()

def test_cli_debug_shows_the_traceback(tmp_path):
    rc, err = cli('pretrain', '--out', tmp_path, *S, '--epochs', '0', '--debug')
    assert rc == 2 and 'Traceback' in err and err.strip().endswith('error: --epochs: must be >= 1, got 0')


def test_two_concurrent_pretrains_second_refused_first_intact(tmp_path):
    exe = str(Path(sys.executable).parent/'location-tying')
    args = ['pretrain', '--out', str(tmp_path), *S, '--n-per-modality', '1024', '--epochs', '4']
    first = subprocess.Popen([exe, *args, '--seed', '0'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    def owner():  # the pid in .lock, written once the OS lock is held
        try: return json.loads((tmp_path/'.lock').read_text() or '{}').get('pid')
        except (OSError, ValueError): return None
    while owner() != first.pid and time.time() < deadline and first.poll() is None: time.sleep(0.02)
    first.send_signal(signal.SIGSTOP)  # paused, it still holds the lock: the second run meets it however fast the machine
    try: second = subprocess.run([exe, *args, '--seed', '1'], capture_output=True, text=True, timeout=300)
    finally: first.send_signal(signal.SIGCONT)
    assert second.returncode == 2 and f'is in use by another run (pid {first.pid}' in second.stderr, second.stderr
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    got = load_encoder(tmp_path)
    assert got.config['train']['seed'] == 0 and got.config['epoch'] == 3 and not (tmp_path/'.lock').exists()
    assert len(pd.read_csv(tmp_path/'history.csv')) == 4 * 1024 // 32


# data files and the name-embedding cache
from location_tying import data

def _gz(d:Path) -> Path: return d/'cities1000.tsv.gz'

DERIVED_CASES = [  # (case, change to a fresh copy of the derived table) -> refused naming the file and the recorded sha256
    ('a changed row',  lambda p: p.write_bytes(gzip_edit(p.read_bytes()))),
    ('truncated',      lambda p: p.write_bytes(p.read_bytes()[:1000])),
    ('empty',          lambda p: p.write_bytes(b'')),
    ('not gzip',       lambda p: p.write_text('geonameid\tname\n1\tx\n')),
]

def gzip_edit(raw:bytes) -> bytes:
    import gzip
    return gzip.compress(gzip.decompress(raw).replace(b'Hamburg', b'Hamborg', 1))

@pytest.fixture(scope='module')
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp('data'); data.build_data(d); return d

@pytest.mark.parametrize('case,change', DERIVED_CASES, ids=[c[0] for c in DERIVED_CASES])
def test_derived_table_checked_against_its_record(built, tmp_path, case, change):
    for f in ('cities1000.tsv.gz', 'PROVENANCE.md'): shutil.copy(built/f, tmp_path/f)
    change(_gz(tmp_path))
    refused(lambda: data._derived('cities1000.tsv.gz', tmp_path), f'{_gz(tmp_path)} does not match the sha256 recorded for it', ValueError)

def test_source_changed_after_its_first_check_is_checked_again(tmp_path, monkeypatch):
    f = tmp_path/'src.bin'; f.write_bytes(b'original')
    monkeypatch.setitem(data.SOURCES, 'probe', dict(package='none', module='none', version='0', path='src.bin', licence='-',
                                                    sha256=data.file_sha256(f), what='-'))
    monkeypatch.setattr(data, '_package_dir', lambda src: tmp_path)
    assert data.source_path('probe') == f
    time.sleep(0.01); f.write_bytes(b'changed!')
    refused(lambda: data.source_path('probe'), "sha256 mismatch for source 'probe'", ValueError)

def _shard_rows_shifted(p):
    with np.load(p) as z: keys, emb, sha = z['keys'], z['emb'], z['sha256']
    np.savez(p, keys=keys, emb=np.roll(emb, 1, axis=0), sha256=sha)

def _shard_legacy(p, emb_change):
    with np.load(p) as z: keys, emb = z['keys'], z['emb']
    np.savez(p, keys=keys, emb=emb_change(emb))  # a shard written before shards carried checksums

SHARD_CASES = [  # (case, damage to the cache shard) -> the shard is named in a warning, discarded and rebuilt
    ('truncated',         lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2])),
    ('0 bytes',           lambda p: p.write_bytes(b'')),
    ('rows shifted',      _shard_rows_shifted),
    ('NaN (no checksum)', lambda p: _shard_legacy(p, lambda e: np.where(np.arange(len(e))[:, None] == 0, np.nan, e).astype(np.float32))),
    ('width 100',         lambda p: _shard_legacy(p, lambda e: e[:, :100])),
]

@pytest.mark.parametrize('case,damage', SHARD_CASES, ids=[c[0] for c in SHARD_CASES])
def test_damaged_cache_shard_is_named_discarded_and_rebuilt(tmp_path, monkeypatch, case, damage):
    monkeypatch.setenv('LOCATION_TYING_CACHE', str(tmp_path)); monkeypatch.setattr(data, '_SHARDS', {})
    names = ['Hamburg', 'Nairobi', 'Quito']
    ref = data.embed_names(names, progress=False)
    shard = next(data._emb_dir().glob('shard_*.npz')); damage(shard); data._SHARDS.clear()
    with pytest.warns(UserWarning, match=f'discarding the damaged cache shard .*{shard.name}'):
        again = data.embed_names(names, progress=False)
    np.testing.assert_allclose(again, ref, atol=1e-5)


def test_loads_polled_while_a_run_trains_never_fail(tmp_path):
    "A reader polling the folder while `pretrain` writes a checkpoint every epoch always gets a complete set."
    exe = str(Path(sys.executable).parent/'location-tying')
    run = subprocess.Popen([exe, 'pretrain', '--out', str(tmp_path/'run'), *S, '--n-per-modality', '512', '--epochs', '12'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    loads, failures, epochs = 0, [], set()
    while run.poll() is None:
        if not (tmp_path/'run'/'manifest.json').exists(): time.sleep(0.01); continue
        try:
            with warnings.catch_warnings(): warnings.simplefilter('ignore'); epochs.add(load_encoder(tmp_path/'run').config['epoch'])
            loads += 1
        except Exception as e: failures.append(f'{type(e).__name__}: {e}')
    assert run.returncode == 0, run.stderr[-2000:]
    print(f'{loads} loads over {len(epochs)} epochs, {len(failures)} failures')
    assert loads > 20 and len(epochs) > 5 and not failures, (loads, sorted(epochs), failures[:3])


def test_cli_notices_are_one_line(tmp_path):
    "A lock left by a killed run, and a half-written top set, are taken over / fallen back from with a one-line warning."
    assert cli('pretrain', '--out', tmp_path, *S, '--epochs', '2')[0] == 0
    (tmp_path/'.lock').write_text(json.dumps({'pid': 2**22 + 1, 'host': 'a killed run'}))
    (tmp_path/'history.csv').write_text('half-written\n')
    rc, err = cli('pretrain', '--out', tmp_path, *S, '--epochs', '3', '--resume')
    lines = err.splitlines()
    assert rc == 0 and len(lines) == 2, err
    assert 'warning:' in lines[0] and 'no longer holds it' in lines[0], err
    assert 'warning:' in lines[1] and 'Using the previous complete checkpoint' in lines[1] and '(1 epoch(s) done' in lines[1], err
    assert load_encoder(tmp_path).config['epoch'] == 2


def test_cli_internal_error_is_one_line_with_a_pointer_to_debug(tmp_path, monkeypatch):
    import location_tying.train
    def bug(*a, **k): raise RuntimeError('shape mismatch somewhere inside')
    monkeypatch.setattr(location_tying.train, 'fit', bug)
    rc, err = cli('pretrain', '--out', tmp_path, *S)
    assert rc == 1 and err == ('location-tying pretrain: error: shape mismatch somewhere inside '
                               '(RuntimeError: an internal error; run again with --debug for the traceback)\n'), err


@pytest.fixture(scope='module')
def whole_run(tmp_path_factory):
    return fit(TrainConfig(**{**TINY, 'epochs': 2}), out_dir=tmp_path_factory.mktemp('whole'), progress=False)

@pytest.mark.parametrize('k', range(14))  # renames: 6 in the first commit (5 files, the manifest), 7 in the second (previous/ too); k=13: none dies
def test_fit_killed_at_each_write_resumes_to_the_same_weights(whole_run, tmp_path, k):
    "A run killed at any file write of its checkpoints leaves a folder that loads or refuses clearly, and resumes exactly."
    calls, real = [], os.replace
    def dying(src, dst):
        if tmp_path in Path(dst).parents:
            calls.append(dst)
            if len(calls) == k + 1: raise KeyboardInterrupt('killed')
        real(src, dst)
    with mock.patch('os.replace', dying), contextlib.suppress(KeyboardInterrupt):
        fit(TrainConfig(**{**TINY, 'epochs': 2}), out_dir=tmp_path, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        try: assert load_encoder(tmp_path).config['epoch'] == (0 if k < 13 else 1), k
        except ValueError as e: assert k < 6 and 'never committed' in str(e), (k, str(e))
        resumed = fit(TrainConfig(**{**TINY, 'epochs': 2}), out_dir=tmp_path, resume=True, progress=False)
    for a, b in zip(whole_run.models.parameters(), resumed.models.parameters()): assert torch.equal(a, b), k
    assert resumed.history.loss.tolist() == whole_run.history.loss.tolist()


@pytest.mark.parametrize('name', ['state.safetensors', 'encoder.safetensors', 'config.json', 'history.csv', 'validation.csv', 'manifest.json'])
def test_run_folder_with_a_flipped_byte_loads_verified_weights_and_resumes_exactly(whole_run, tmp_path, name):
    fit(TrainConfig(**{**TINY, 'epochs': 2}), out_dir=tmp_path, progress=False)
    raw = bytearray((tmp_path/name).read_bytes()); raw[len(raw) // 2] ^= 0x04; (tmp_path/name).write_bytes(bytes(raw))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always'); got = load_encoder(tmp_path)
    uses_it = name in ('encoder.safetensors', 'config.json', 'manifest.json')  # what load_encoder reads and checks
    assert got.config['epoch'] == (0 if uses_it else 1) and bool(caught) == uses_it, (name, got.config['epoch'], caught)
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); resumed = fit(TrainConfig(**{**TINY, 'epochs': 2}), out_dir=tmp_path, resume=True, progress=False)
    for a, b in zip(whole_run.models.parameters(), resumed.models.parameters()): assert torch.equal(a, b), name
