"Run by tests/test_cuda.py, alone or under `torchrun --nproc_per_node 1`: `fit` on CUDA with tiny synthetic modalities."
import sys
from location_tying.distributed import process_group
from location_tying.train import TrainConfig, fit
from distributed_worker import datasets  # three tiny unpaired modalities at real places (same folder)

CONFIG = dict(method='melt', modalities=('imagery', 'atmosphere', 'toponyms'), degree=15, hidden=32, layers=1, dim=16,
              batch_size=16, epochs=3, lr=1e-3, eps_km=50.0, device='cuda')

if __name__ == '__main__':
    with process_group() as procs:  # under torchrun: 'cpu:gloo,cuda:nccl'
        fit(TrainConfig(**CONFIG), sys.argv[1], datasets=datasets(), progress=False)
        print(f'rank {procs.rank} of {procs.world_size}: done')
