"""Two CPU processes on gloo train one DistributedDataParallel model (what torchrun does on GPUs)."""

import socket

import torch
import torch.multiprocessing as mp
from tiny import tiny_config

from BreastSubtypeTraining.train import fit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, rows, out_dir, weights_dir):
    import os

    from safetensors.torch import save_file

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    result = fit(rows, out_dir, tiny_config(epochs=1, threads=1), device="cpu")
    state = {k: v.contiguous() for k, v in result.network.state_dict().items()}
    save_file(state, f"{weights_dir}/rank{rank}.safetensors")


def test_two_process_gloo_training_keeps_replicas_identical_and_rank0_writes(tmp_path, phantom_rows):
    from safetensors.torch import load_file

    out = tmp_path / "run"
    mp.spawn(_worker, args=(2, _free_port(), phantom_rows, str(out), str(tmp_path)), nprocs=2, join=True)
    assert (out / "metrics.json").is_file() and (out / "checkpoints" / "best.safetensors").is_file()
    # rank 1 ends with the last-epoch weights; rank 0 wrote them to last.safetensors.
    rank1 = load_file(str(tmp_path / "rank1.safetensors"))
    last = load_file(str(out / "checkpoints" / "last.safetensors"))
    for key, value in rank1.items():
        torch.testing.assert_close(value, last[f"network.{key}"], rtol=0, atol=0)
