"""torch.distributed plumbing for ``torchrun``: one process per device, DistributedDataParallel.

``torchrun --nproc_per_node N -m ptsnn.cli.train_cmd ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and starts a process group (nccl when
CUDA is available, gloo on CPU). Without them (plain ``ptsnn train``) it returns a single-process context and
every helper here is a no-op, so the trainer has one code path.

Rules the trainer follows: the model is initialised identically everywhere (same seed; :func:`wrap_model`
also broadcasts rank 0's parameters and buffers, so ``data_init`` results agree even if batches differ),
training batches are sharded by :class:`~torch.utils.data.distributed.DistributedSampler`, evaluation is
sharded and the predictions gathered (each example counted once), and only rank 0 writes files or prints.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ptsnn.errors import InputError


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    enabled: bool = False  # a process group is running (world_size > 1)

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not an integer") from None


def init_distributed(device: str | None = None, backend: str | None = None, timeout_s: float = 1800) -> DistContext:
    """Context from the torchrun environment; starts the process group when ``WORLD_SIZE`` > 1.

    ``device``: ``cpu``, ``cuda`` or None (CUDA when available). Each rank uses ``cuda:LOCAL_RANK``.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", 0)
    use_cuda = torch.cuda.is_available() if device is None else str(device).startswith("cuda")
    if use_cuda and not torch.cuda.is_available():
        raise InputError("device cuda requested but CUDA is not available")
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world <= 1:
        return DistContext(0, 1, 0, dev, False)
    if dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(), local, dev, True)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise InputError(f"WORLD_SIZE={world} but {name} is not set (launch with torchrun)")
    dist.init_process_group(backend=backend or ("nccl" if use_cuda else "gloo"), rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return DistContext(rank, world, local, dev, True)


def cleanup(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def broadcast_module(module: torch.nn.Module, ctx: DistContext, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers to every rank (in place)."""
    if not ctx.enabled:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    """DDP around ``model`` (already on ``ctx.device``); DDP's constructor broadcasts rank 0's state."""
    if not ctx.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DDP(model, device_ids=ids)  # buffers (quantization state) are synced from rank 0


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def train_sampler(dataset, ctx: DistContext, seed: int):
    """A DistributedSampler (shuffled, seeded) when distributed, else None (the loader shuffles)."""
    if not ctx.enabled:
        return None
    from torch.utils.data.distributed import DistributedSampler

    return DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=seed,
                              drop_last=False)


def shard(indices: Sequence[int], ctx: DistContext) -> list[int]:
    """This rank's share of evaluation indices (strided, no padding: every example exactly once overall)."""
    return list(indices)[ctx.rank::ctx.world_size] if ctx.enabled else list(indices)


def gather_objects(obj: Any, ctx: DistContext) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if not ctx.enabled:
        return [obj]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj: Any, ctx: DistContext, src: int = 0) -> Any:
    if not ctx.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src)
    return box[0]
