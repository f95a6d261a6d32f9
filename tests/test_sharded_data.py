"""Under torchrun each process builds only its share of an epoch's data: the rows its shards of the plan name, with the
same inputs those rows have in the whole epoch's datasets. (tests/test_distributed.py checks that 2 processes still
train what 1 process trains.)"""
import numpy as np
import torch
from location_tying.distributed import Processes
from location_tying.train import TrainConfig, epoch_datasets, epoch_plan

def check_shares(config, world_size=2, epoch=1):
    sizes = {m: config.n_per_modality for m in config.modalities}
    plan = epoch_plan(config, sizes, epoch)
    active = tuple(plan[0])  # as fit draws them: SALT trains one modality per epoch
    whole = epoch_datasets(config, epoch, {}, active)
    for rank in range(world_size):
        procs = Processes(rank, world_size)
        rows = procs.epoch_rows(plan)
        data = epoch_datasets(config, epoch, {}, active, rows=rows)
        for step in plan:
            mine, ref = procs.shard(step, data), procs.shard(step)
            for m in mine:
                assert torch.equal(data[m].x[mine[m]], whole[m].x[ref[m]]), m
                np.testing.assert_array_equal(data[m].lonlat[mine[m]], whole[m].lonlat[ref[m]])
        yield rank, data

def test_fresh_raster_datasets_hold_only_this_process_share():
    config = TrainConfig(method='melt', modalities=('imagery', 'atmosphere'), n_per_modality=600, patch_px=8, batch_size=64)
    built = {rank: {m: len(d) for m, d in data.items()} for rank, data in check_shares(config)}
    for m in config.modalities:
        assert sum(built[r][m] for r in built) == 600 and all(250 <= built[r][m] <= 350 for r in built), built

def test_salt_epochs_and_fixed_datasets():
    config = TrainConfig(method='salt', modalities=('imagery', 'toponyms'), n_per_modality=200, patch_px=8, batch_size=32)
    seen = set()
    for epoch in (0, 1):  # SALT: one modality per epoch; toponyms are drawn once per run, whole
        for rank, data in check_shares(config, epoch=epoch):
            for m, d in data.items(): assert (len(d) == 200) == (m == 'toponyms'), (epoch, rank, m, len(d)); seen.add(m)
    assert seen == {'imagery', 'toponyms'}
