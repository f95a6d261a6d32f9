"A zoo recipe trained by the `location-tying pretrain` command and loaded back with `load_encoder`."
import subprocess, sys, shutil
from pathlib import Path
import torch
from location_tying.checkpoint import load_encoder
from location_tying.location_encoder import make_location_encoder, location_encoder_recipe

TINY = ['--method', 'melt', '--modalities', 'imagery,atmosphere', '--n-per-modality', '256', '--patch-px', '8',
        '--hidden', '32', '--layers', '1', '--dim', '16', '--batch-size', '64', '--lr', '1e-3', '--epochs', '1', '--val-n', '0']

def pretrain(*args):
    exe = shutil.which('location-tying') or str(Path(sys.executable).parent / 'location-tying')
    return subprocess.run([exe, 'pretrain', *args], capture_output=True, text=True)

def test_recipe_trains_from_the_command_line_and_loads(tmp_path):
    out = pretrain('--out', str(tmp_path), '--location-encoder', 'hashgrid', *TINY)
    assert out.returncode == 0, out.stderr
    emb = load_encoder(tmp_path)
    untrained = make_location_encoder(**location_encoder_recipe('hashgrid', hidden=32, layers=1, dim=16))
    assert emb.config['location_encoder'] == untrained.config and emb.config['train']['location_encoder'] == 'hashgrid'
    assert emb.model.state_dict().keys() == untrained.state_dict().keys()
    x = torch.tensor([[10.0, 53.5], [-180.0, 90.0], [180.0, -90.0]])
    with torch.no_grad(): assert emb.model(x).shape == (3, 16) and torch.isfinite(emb.model(x)).all()
    # training moved the hash tables beyond their initial ±1e-4
    assert emb.model.positional.tables.abs().max() > 2e-4

def test_unknown_recipe_is_a_usage_error(tmp_path):
    out = pretrain('--out', str(tmp_path), '--location-encoder', 'transformer', *TINY)
    assert out.returncode == 2 and "--location-encoder: must be '' or one of" in out.stderr and 'voronoi' in out.stderr
