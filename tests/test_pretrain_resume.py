"Kill a real `location-tying pretrain` process mid-run, rerun it with --resume, and get the weights of a run never interrupted."
import os, signal, subprocess, sys, time, shutil
from pathlib import Path
from safetensors.torch import load_file
import torch

TINY = ['--method', 'melt', '--modalities', 'imagery,atmosphere', '--n-per-modality', '512', '--patch-px', '8', '--degree', '4',
        '--hidden', '32', '--layers', '1', '--dim', '16', '--batch-size', '64', '--lr', '1e-3']

def exe():
    return shutil.which('location-tying') or str(Path(sys.executable).parent / 'location-tying')

def pretrain(out, epochs, *extra, **kw):
    return subprocess.run([exe(), 'pretrain', '--out', str(out), '--epochs', str(epochs), *TINY, *extra], capture_output=True, text=True, **kw)

def test_killed_run_resumes_to_the_same_weights(tmp_path):
    whole, killed = tmp_path / 'whole', tmp_path / 'killed'
    assert pretrain(whole, 6).returncode == 0
    proc = subprocess.Popen([exe(), 'pretrain', '--out', str(killed), '--epochs', '6', *TINY], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = killed / 'manifest.json'  # the first committed checkpoint
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline: time.sleep(0.05)
    assert proc.poll() is None, 'the run ended before it could be killed: ' + proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert state.exists()
    out = pretrain(killed, 6, '--resume')
    assert out.returncode == 0, out.stderr
    a, b = load_file(whole / 'encoder.safetensors'), load_file(killed / 'encoder.safetensors')
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k
    assert (whole / 'history.csv').read_text() .count('\n') == (killed / 'history.csv').read_text().count('\n')

def test_resume_with_other_settings_is_refused(tmp_path):
    assert pretrain(tmp_path, 1).returncode == 0
    out = pretrain(tmp_path, 2, '--resume', '--dim', '8')
    assert out.returncode == 2 and 'cannot resume' in out.stderr

def test_mdico_pretrain_resumes_to_the_same_weights_and_loads(tmp_path):
    "MDiCo from the command line: a run stopped after 2 epochs and resumed to 3 equals a straight 3-epoch run; load_encoder reads it."
    import numpy as np, pandas as pd
    import location_tying
    whole, part = tmp_path / 'whole', tmp_path / 'part'
    mdico = ('--method', 'mdico', '--mdico-specific-dim', '3')  # dim 16 = shared 10 + 2 modalities × 3
    for out, epochs, *extra in ((whole, 3), (part, 2), (part, 3, '--resume')):
        res = pretrain(out, epochs, *mdico, *extra)
        assert res.returncode == 0, res.stderr
    a, b = load_file(whole / 'encoder.safetensors'), load_file(part / 'encoder.safetensors')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    emb = location_tying.load_encoder(whole).embed(np.array([[9.99, 53.55], [-74.0, 40.7]]))
    assert emb.shape == (2, 16) and np.isfinite(emb).all()
    h = pd.read_csv(whole / 'history.csv')
    assert np.allclose(h.loss, h.loss_shared + h.loss_specific + h.loss_discriminator, atol=1e-4)
    assert h.acc_specific.between(0, 1).all() and h.acc_shared.between(0, 1).all()

def test_mdico_without_room_for_a_shared_part_is_refused(tmp_path):
    out = pretrain(tmp_path, 1, '--method', 'mdico', '--mdico-specific-dim', '8')
    assert out.returncode == 2 and 'shared part' in out.stderr and out.stderr.strip().count('\n') == 0, out.stderr
