"""Multi-process training on CPU with the gloo backend: 2 processes, each with half of a batch, give the loss and the
parameter gradients of 1 process with the whole batch; `torchrun ... -m location_tying.cli pretrain` trains the same
encoder as one process, writes a checkpoint `load_encoder` reads, and a run killed mid-way resumes to the same weights."""
import os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
import location_tying
from location_tying.coords import PLACES

HERE = Path(__file__).parent
TINY = ['--method', 'melt', '--modalities', 'imagery,atmosphere', '--n-per-modality', '512', '--patch-px', '8', '--degree', '4',
        '--hidden', '32', '--layers', '1', '--dim', '16', '--batch-size', '64', '--lr', '1e-3']
EPOCHS = 6

def torchrun_cmd(*args, nproc=2):
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}', *map(str, args)]

def torchrun(*args, **kw): return subprocess.run(torchrun_cmd(*args), capture_output=True, text=True, timeout=600, **kw)

def pretrain_cmd(out, *extra): return ['-m', 'location_tying.cli', 'pretrain', '--out', out, '--epochs', EPOCHS, *TINY, *extra]

@pytest.fixture(scope='module')
def gradients(tmp_path_factory):
    "Rank 0's and rank 1's results of tests/distributed_worker.py: per case, one process (`one`) and two processes (`two`)."
    out = tmp_path_factory.mktemp('grads')
    run = torchrun(HERE / 'distributed_worker.py', out)
    assert run.returncode == 0, run.stderr[-3000:]
    return load_file(out / 'rank0.safetensors'), load_file(out / 'rank1.safetensors')

def check_case(case, results):
    r0, r1 = results
    one = {k.removeprefix(f'{case}.one.'): v for k, v in r0.items() if k.startswith(f'{case}.one.')}
    assert 'loss' in one and 'loss.logit_scale.log_scale' in one and any(k.startswith('location.') for k in one)
    for k, ref in one.items():
        two = r0[f'{case}.two.{k}']
        assert torch.allclose(two, ref, rtol=1e-5, atol=1e-6 * ref.abs().max().item()), (k, (two - ref).abs().max().item())
        assert torch.equal(two, r1[f'{case}.two.{k}']), f'{k}: the two processes disagree'
    assert r0[f'{case}.rows'] + r1[f'{case}.rows'] > 0 and r0[f'{case}.rows'] != 0 and r1[f'{case}.rows'] != 0

def test_symmetric_loss_and_gradients_match_one_process(gradients):
    check_case('symmetric', gradients)

def test_melt_loss_and_gradients_match_one_process(gradients):
    check_case('melt', gradients)  # three modalities, one with a single row (one process has none), same-place masking across processes

def test_melt_per_modality_mean_matches_one_process(gradients):
    check_case('melt_per_modality', gradients)

def test_mdico_loss_and_gradients_match_one_process(gradients):
    check_case('mdico', gradients)  # shared + specific alignment and both discriminators over the gathered batch
    r0 = gradients[0]
    assert r0['mdico.one.loss.disc_shared.net.0.weight'].abs().sum() > 0 and r0['mdico.one.loss.disc_specific.net.2.bias'].abs().sum() > 0

@pytest.fixture(scope='module')
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp('two')
    run = torchrun(*pretrain_cmd(out))
    assert run.returncode == 0, run.stderr[-3000:]
    return out, run

def test_two_process_run_writes_a_checkpoint_load_encoder_reads(two_process_run):
    out, run = two_process_run
    assert 'on 2 processes' in run.stdout and run.stdout.count('epoch ') == EPOCHS  # only rank 0 prints
    emb = location_tying.load_encoder(out).embed(np.array(list(PLACES.values())))
    assert emb.shape == (len(PLACES), 16) and np.isfinite(emb).all()
    hist = pd.read_csv(out / 'history.csv')
    assert hist.epoch.nunique() == EPOCHS and (hist.groupby('epoch').rows.sum() == 1024).all()  # global batches, written once

def test_two_processes_train_what_one_process_trains(two_process_run, tmp_path):
    one = subprocess.run([sys.executable, *map(str, pretrain_cmd(tmp_path))], capture_output=True, text=True, timeout=600,
                         env={**os.environ, 'OMP_NUM_THREADS': '1'})  # as torchrun gives each of its processes
    assert one.returncode == 0, one.stderr
    a, b = load_file(tmp_path / 'encoder.safetensors'), load_file(two_process_run[0] / 'encoder.safetensors')
    for k in a: assert torch.allclose(a[k], b[k], atol=1e-4), (k, (a[k] - b[k]).abs().max().item())

def test_killed_process_leaves_checkpoint_and_resume_finishes(two_process_run, tmp_path):
    proc = subprocess.Popen(torchrun_cmd(*pretrain_cmd(tmp_path)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state, deadline = tmp_path / 'manifest.json', time.time() + 300  # the first committed checkpoint
    while not state.exists() and proc.poll() is None and time.time() < deadline: time.sleep(0.05)
    assert proc.poll() is None, 'the run ended before it could be killed: ' + proc.stderr.read().decode()[-3000:]
    workers = Path(f'/proc/{proc.pid}/task/{proc.pid}/children').read_text().split()
    assert len(workers) == 2, workers
    os.kill(int(workers[-1]), signal.SIGKILL)  # one worker dies; torchrun stops the other and fails
    assert proc.wait(timeout=120) != 0
    epoch = location_tying.load_encoder(tmp_path).config['epoch']  # intact: it loads
    assert 0 <= epoch < EPOCHS - 1
    run = torchrun(*pretrain_cmd(tmp_path, '--resume'))
    assert run.returncode == 0, run.stderr[-3000:]
    assert location_tying.load_encoder(tmp_path).config['epoch'] == EPOCHS - 1
    a, b = load_file(tmp_path / 'encoder.safetensors'), load_file(two_process_run[0] / 'encoder.safetensors')
    for k in a: assert torch.equal(a[k], b[k]), k  # the same weights as the run never interrupted
    assert len(pd.read_csv(tmp_path / 'history.csv')) == len(pd.read_csv(two_process_run[0] / 'history.csv'))
