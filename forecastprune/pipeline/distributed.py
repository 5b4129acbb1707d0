"""What the pruner needs under ``torch.distributed``: the same wrapper, rank 0's decision."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._util import is_distributed


def rewrap(old: nn.Module, new_inner: nn.Module) -> nn.Module:
    """Wrap ``new_inner`` the way ``old`` was wrapped (a new DDP with the same settings).

    The settings that change what DDP does each step carry over too: unused parameters
    (ultralytics trains with ``find_unused_parameters=True``) and buffer syncing (named
    ``forward_sync_buffers`` from torch 2.13, ``broadcast_buffers`` before).
    """
    from torch.nn.parallel import DistributedDataParallel as DDP

    if isinstance(old, DDP):
        sync = (
            "forward_sync_buffers"
            if hasattr(old, "forward_sync_buffers")
            else ("broadcast_buffers")
        )
        return DDP(
            new_inner,
            device_ids=old.device_ids,
            output_device=old.output_device,
            process_group=old.process_group,
            find_unused_parameters=old.find_unused_parameters,
            **{sync: getattr(old, sync)},
        )
    return new_inner


def broadcast_object(obj: Any) -> Any:
    """Rank 0's object on every rank (the object itself outside distributed runs).

    The objects are the pruner's own decisions, produced in-process on rank 0, so the pickling
    ``broadcast_object_list`` does internally never sees outside data.
    """
    if not is_distributed():
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]
