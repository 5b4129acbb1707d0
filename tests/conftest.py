"""Suite-wide settings."""

from __future__ import annotations

import matplotlib
import torch

# The models under test are tiny: one intra-op thread is faster than two fighting over a loaded
# 2-core machine (measured about 20x under load), and it makes float results reproducible.
torch.set_num_threads(1)
# Plots are written to files only; never look for a display.
matplotlib.use("Agg")
