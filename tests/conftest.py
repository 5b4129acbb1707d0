"""Suite-wide settings."""

from __future__ import annotations

import matplotlib
import torch

# The models under test are tiny: one intra-op thread is faster than two fighting over a loaded
# 2-core machine (measured about 20x under load), and it makes float results reproducible.
torch.set_num_threads(1)
# Plots are written to files only; never look for a display.
matplotlib.use("Agg")

# PyPI's torchvision wheel is built against CUDA torch; next to the CPU torch it cannot load its
# operators and `import torchvision` (pulled in by lightning and ultralytics) fails. Install the
# pure-torch stand-in before anything imports it (a no-op where torchvision loads fine).
from forecastprune._torchvision_ops import ensure_torchvision_ops  # noqa: E402

ensure_torchvision_ops()
