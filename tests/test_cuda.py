"""On a machine with a CUDA GPU (skipped elsewhere): spherical harmonics on the GPU agree with the CPU, `fit` trains on
CUDA and writes a checkpoint that loads on the CPU, and under `torchrun` the NCCL path (DDP, the gradient-carrying
gather) trains the same encoder as one plain process. One GPU allows one NCCL rank: the 2-rank equivalence itself is
tested on CPU with gloo (test_distributed.py)."""
import subprocess, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
import location_tying
from location_tying.coords import PLACES, sample_sphere
from location_tying.positional import SphericalHarmonics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
HERE = Path(__file__).parent

@pytest.mark.parametrize('degree', [10, 40])
def test_spherical_harmonics_on_cuda_match_cpu(degree):
    x = torch.tensor(sample_sphere(5000, seed=0), dtype=torch.float64)
    sh = SphericalHarmonics(degree)
    cpu, gpu = sh(x), sh.cuda()(x.cuda()).cpu()
    assert torch.allclose(gpu, cpu, atol=1e-10), (gpu - cpu).abs().max().item()
    g32 = sh(x.float().cuda()).cpu()
    assert g32.dtype == torch.float32 and torch.isfinite(g32).all()
    assert torch.allclose(g32.double(), cpu, atol=1e-4), (g32.double() - cpu).abs().max().item()

def run_worker(out, torchrun=False):
    launch = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=1'] if torchrun else [sys.executable]
    r = subprocess.run([*launch, str(HERE / 'cuda_worker.py'), str(out)], capture_output=True, text=True, timeout=600, cwd=HERE)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return location_tying.load_encoder(out)

def test_fit_on_cuda_and_under_torchrun_nccl(tmp_path):
    plain, nccl = run_worker(tmp_path / 'plain'), run_worker(tmp_path / 'nccl', torchrun=True)
    places = np.array(list(PLACES.values()))
    a, b = plain.embed(places), nccl.embed(places)  # both loaded on the CPU
    assert a.shape == (len(places), 16) and np.isfinite(a).all()
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    h_plain, h_nccl = (pd.read_csv(tmp_path / d / 'history.csv') for d in ('plain', 'nccl'))
    assert len(h_plain) == len(h_nccl) > 0 and np.isfinite(h_plain.loss).all()
    np.testing.assert_allclose(h_nccl.loss, h_plain.loss, rtol=1e-4)
