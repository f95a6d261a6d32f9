"Run under `torchrun --nproc_per_node 2` by tests/test_distributed.py: one global batch, split across the processes, against the same batch on one process."
import sys
from pathlib import Path
import numpy as np
import torch
from torch import nn
from safetensors.torch import save_file
from location_tying.coords import PLACES, sample_sphere
from location_tying.data import ModalityData
from location_tying.location_encoder import make_location_encoder
from location_tying.modality_encoders import make_modality_encoder
from location_tying.loss import MELTLoss, SymmetricInfoNCE
from location_tying.melt import make_joint_batch, train_step
from location_tying.mdico import MDiCoLoss, mdico_train_step
from location_tying.distributed import process_group, wrap_models, shard_step

def datasets():
    "Three tiny unpaired modalities at real places; Hamburg and a point 4 km from it fall on different processes."
    places = np.array(list(PLACES.values()), np.float32)
    pts = np.concatenate([places, places[:1] + [0.05, 0.02], sample_sphere(12, seed=1)]).astype(np.float32)
    g = torch.Generator().manual_seed(0)
    return {'imagery': ModalityData('imagery', pts[:9], torch.randint(0, 256, (9, 3, 8, 8), generator=g, dtype=torch.uint8)),
            'atmosphere': ModalityData('atmosphere', pts[9:20], torch.rand(11, 12, generator=g) * 4),
            'toponyms': ModalityData('toponyms', pts[20:], torch.randn(1, 384, generator=g))}  # one row: one process gets none

CASES = {  # name -> (loss module, modalities)
    'symmetric': (lambda: SymmetricInfoNCE(eps_km=50.0), ['imagery']),
    'melt': (lambda: MELTLoss(eps_km=50.0), ['imagery', 'atmosphere', 'toponyms']),
    'melt_per_modality': (lambda: MELTLoss(direction_weights=(0.3, 0.7), per_modality_mean=True), ['imagery', 'atmosphere', 'toponyms']),
    'mdico': (lambda: MDiCoLoss(('imagery', 'atmosphere', 'toponyms'), 4, 2, eps_km=50.0), ['imagery', 'atmosphere', 'toponyms']),
}
WIDTHS = {'mdico': (4 + 3 * 2, 4 + 2)}  # MDiCo: location shared ⊕ 3 specific parts, modalities shared ⊕ specific

def build(case):
    loss, names = CASES[case]
    torch.manual_seed(0)
    loc_dim, mod_dim = WIDTHS.get(case, (8, 8))
    models = nn.ModuleDict({'location': make_location_encoder(degree=4, hidden=16, layers=1, dim=loc_dim), 'loss': loss()})
    for m in names: models[m] = make_modality_encoder(m, dim=mod_dim)
    return models

def step(models, batch, symmetric, case=''):
    "`melt.train_step` (MDiCo: `mdico.mdico_train_step`) without optimisers (gradients stay in `.grad`); the symmetric loss takes no modality ids."
    if case == 'mdico': return mdico_train_step(models, batch, [], ('imagery', 'atmosphere', 'toponyms'))
    if not symmetric: return train_step(models, batch, [])
    loss = models['loss'](models['location'](batch.lonlat), models[batch.modalities[0]](batch.inputs[0]), lonlat=batch.lonlat)
    loss.backward()
    return loss.item()

def grads(prefix, models, loss):
    out = {f'{prefix}.{k}': p.grad.clone() for k, p in models.named_parameters()}
    out[f'{prefix}.loss'] = torch.tensor(loss, dtype=torch.float64)
    return out

def main(out_dir):
    data = datasets()
    with process_group() as pg:
        results = {}
        for case, (_, names) in CASES.items():
            plan = {m: np.arange(len(data[m].lonlat)) for m in names}
            if pg.rank == 0:  # the reference: one process, the whole batch, no process group involved
                ref = build(case)
                results.update(grads(f'{case}.one', ref, step(ref, make_joint_batch(data, plan), case == 'symmetric', case)))
            models = build(case)
            local = make_joint_batch(data, shard_step(plan, pg.rank, pg.world_size), keep_empty=True)
            results[f'{case}.rows'] = torch.tensor(len(local))
            results.update(grads(f'{case}.two', models, step(wrap_models(models), local, case == 'symmetric', case)))
        save_file(results, str(Path(out_dir) / f'rank{pg.rank}.safetensors'))

if __name__ == '__main__': main(sys.argv[1])
