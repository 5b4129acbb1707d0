"""Run models in eval mode for a moment, every module's own train/eval flag restored after.

Planning, tracing, verifying and timing a model all need one eval-mode forward without leaving
a trace on the user's model — including submodules whose flag differs from their parent's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Eval mode inside the block; every module's own flag restored afterwards.

    TorchScript modules are left alone: a frozen one has its mode baked in and no flag to set.
    """
    plain = [m for m in models if not isinstance(m, torch.jit.ScriptModule)]
    flags = {m: m.training for model in plain for m in model.modules()}
    try:
        for model in plain:
            model.eval()
        yield
    finally:
        for module, flag in flags.items():
            module.training = flag
