"""Multi-GPU (or multi-process CPU) training with ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node=N -m BreastSubtypeTraining.cli fit ...`` sets RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/PORT; ``setup`` reads them and joins the process group (NCCL on CUDA,
gloo on CPU). Without them everything here is a no-op, so single-process code paths stay plain.
Rank 0 alone writes files (checkpoints, logs, the package); every rank evaluates the full
validation set with identical weights, so early-stopping decisions agree without extra messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    device: object = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, network):
        if self.world_size == 1:
            return network
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # Ablation variants leave some branches unused (e.g. single-task heads).
        return DistributedDataParallel(network, device_ids=device_ids, find_unused_parameters=True)

    def sampler(self, dataset, *, seed: int):
        if self.world_size == 1:
            return None
        from torch.utils.data.distributed import DistributedSampler

        return DistributedSampler(
            dataset, num_replicas=self.world_size, rank=self.rank, shuffle=True, seed=seed
        )

    def average_gradients(self, parameters) -> None:
        """All-reduce gradients of parameters outside the DDP module (the loss's log-variances)."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        for parameter in parameters:
            if parameter.grad is not None:
                dist.all_reduce(parameter.grad)
                parameter.grad /= self.world_size

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            dist.barrier()

    def cleanup(self) -> None:
        if self.world_size > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def setup(device: str = "auto") -> DistributedContext:
    """Join the process group described by torchrun's environment variables, if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    import torch
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
        torch_device = torch.device("cuda", local_rank)
    else:
        torch_device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", rank=rank, world_size=world_size)
    return DistributedContext(rank=rank, world_size=world_size, device=torch_device)
