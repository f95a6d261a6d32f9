"The encoders shipped with the package: load by name, unknown names, damaged files, and a fresh install from the wheel."
import hashlib, os, shutil, subprocess, sys, sysconfig, textwrap
from pathlib import Path
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from location_tying.checkpoint import load_encoder
from location_tying.location_encoder import make_location_encoder
from location_tying.pretrained_encoders import WEIGHTS_DIR, ENCODER_FILE, pretrained, model_card, load_pretrained, read_pretrained

ROOT = Path(__file__).resolve().parents[1]
PLACES = np.array([[2.35, 48.86], [-74.01, 40.71], [151.21, -33.87], [-180.0, -90.0], [180.0, 90.0]])

def test_names_are_shipped_with_cards():
    names = pretrained()
    assert {'melt-4'} <= set(names) and len(names) == 2, names
    for n in names:
        card = model_card(n)
        assert card['name'] == n and card['description'] == names[n]
        assert hashlib.sha256((WEIGHTS_DIR / n / ENCODER_FILE).read_bytes()).hexdigest() == card['sha256']
    size = sum(f.stat().st_size for f in WEIGHTS_DIR.rglob('*') if f.is_file())
    assert size <= 20e6, f'package data is {size / 1e6:.1f} MB'

@pytest.mark.parametrize('name', ['melt-4', 'satclip-relief'])
def test_load_by_name_equals_the_file_read_by_hand(name):
    if name not in pretrained(): pytest.skip(f'{name} is not shipped')
    card = model_card(name)
    net = make_location_encoder(**card['encoder']['location_encoder'])
    net.load_state_dict(load_file(WEIGHTS_DIR / name / ENCODER_FILE)); net.eval()
    with torch.no_grad(): want = net(torch.tensor(PLACES, dtype=torch.float32)).numpy()
    emb = load_encoder(name)
    np.testing.assert_array_equal(emb.embed(PLACES), want)
    assert emb.embed(PLACES).shape == (len(PLACES), card['encoder']['embedding_dim']) and emb.card == card

def test_top_level_pretrained_lists_names():
    code = "import location_tying, sys; assert 'location_tying.pretrained_encoders' not in sys.modules; print(sorted(location_tying.pretrained()))"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(sorted(pretrained()))

def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as e: load_encoder('melt-9')
    msg = str(e.value)
    assert "unknown encoder 'melt-9'" in msg and all(f'{n} ({d})' in msg for n, d in pretrained().items()), msg
    with pytest.raises(FileNotFoundError, match='no encoder at'): load_encoder('no/such/folder')  # a path stays a path

def test_a_path_wins_over_a_name(tmp_path, monkeypatch):
    "A run folder that happens to be called like a shipped encoder loads as the folder."
    from location_tying.checkpoint import save_encoder
    torch.manual_seed(1); enc = make_location_encoder(positional='sh', network='siren', degree=3, hidden=8, layers=1, dim=4)
    save_encoder(tmp_path / 'melt-4', enc, {'location_encoder': enc.config})
    monkeypatch.chdir(tmp_path)
    assert load_encoder('melt-4').embedding_dim == 4

@pytest.fixture
def damaged(tmp_path):
    "A copy of the package's weights folder to break."
    shutil.copytree(WEIGHTS_DIR, tmp_path / 'weights')
    return tmp_path / 'weights'

def test_changed_weights_are_refused(damaged):
    path = damaged / 'melt-4' / ENCODER_FILE
    raw = bytearray(path.read_bytes()); raw[len(raw) // 2] ^= 0x01; path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match='does not match its model card: its sha256 is') as e: load_pretrained('melt-4', where=damaged)
    assert hashlib.sha256(bytes(raw)).hexdigest() in str(e.value) and 'reinstall location_tying' in str(e.value)

def test_truncated_weights_and_bad_cards_are_refused(damaged):
    path = damaged / 'melt-4' / ENCODER_FILE
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match='does not match its model card'): read_pretrained('melt-4', where=damaged)
    (damaged / 'melt-4' / 'card.json').write_text('{"name": "melt-4"')
    with pytest.raises(ValueError, match='is not a valid model card'): load_pretrained('melt-4', where=damaged)
    path.unlink()
    (damaged / 'melt-4' / 'card.json').write_text('{"sha256": "00"}')
    with pytest.raises(FileNotFoundError, match='is missing: the package'): load_pretrained('melt-4', where=damaged)

FRESH = textwrap.dedent('''
    import sys, numpy as np, location_tying
    from location_tying.checkpoint import load_encoder
    assert location_tying.__file__.startswith(sys.prefix), location_tying.__file__  # the wheel's copy, not a source tree
    names = location_tying.pretrained()
    e = load_encoder('melt-4').embed(np.array([[2.35, 48.86], [151.21, -33.87]]))
    print(sorted(names), e.shape, float(abs(e).sum()))
''')

def test_fresh_install_from_the_wheel_loads_by_name_offline(tmp_path):
    "Build the wheel, install it with --no-deps in a new venv that sees the dependencies (not the source tree), load by name with no network."
    wheels = tmp_path / 'dist'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q', '-w', str(wheels), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel = next(wheels.glob('location_tying-*.whl'))
    import zipfile
    inside = [n for n in zipfile.ZipFile(wheel).namelist() if n.startswith('location_tying/weights/')]
    assert {f'location_tying/weights/{n}/{f}' for n in pretrained() for f in (ENCODER_FILE, 'card.json', 'README.md')} <= set(inside), inside
    venv = tmp_path / 'fresh'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    py = venv / 'bin' / 'python'
    site = subprocess.run([py, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'], capture_output=True, text=True, check=True).stdout.strip()
    Path(site, 'deps.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')  # the dependencies; its .pth files (the editable install) are not run
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    subprocess.run([py, '-m', 'pip', 'install', '--no-deps', '--no-index', '--ignore-installed', '-q', str(wheel)], check=True, capture_output=True, cwd=tmp_path, env=env)
    cmd = [py, '-c', FRESH]
    if shutil.which('unshare') and subprocess.run(['unshare', '-n', 'true'], capture_output=True).returncode == 0: cmd = ['unshare', '-n', *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert 'melt-4' in out.stdout and '(2, 256)' in out.stdout, out.stdout
