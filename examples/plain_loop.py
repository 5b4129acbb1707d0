"""Forecast-driven early pruning in a plain PyTorch loop: two extra calls, nothing else.

Trains the Darknet-style demo model on scikit-learn's digits with L1 on the BN γ for the first
30 % of the run while recording γ, then forecasts every channel's end-of-run |γ| with a simple
moving average, prunes half of the prunable channels physically, and trains the smaller model
normally for the rest. Takes under a minute on one CPU thread (measured 42–49 s on a busy
2-core machine, 10–15 s of it imports). The last epoch's test accuracy is noisy at this size:
0.953 and 0.911 were measured on two machines, and it swings by several points between epochs
(0.961 → 0.875 → 0.953 over the last three of one run)::

    python examples/plain_loop.py

It runs single-threaded on purpose: the 8×8 digits model is so small that more threads only add
synchronisation, and on a shared machine threads competing for cores stretched it to minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from forecastprune.engine import PruneSpec
from forecastprune.engine.stats import count_macs, count_params
from forecastprune.pipeline import EarlyPruner
from forecastprune.zoo import build_model, load_digits_split, make_loaders

EPOCHS = 8


def accuracy(model: nn.Module, loader) -> float:
    model.eval()
    with torch.no_grad():
        hits = sum(int((model(x).argmax(1) == y).sum()) for x, y in loader)
    model.train()
    return hits / len(loader.dataset)


def main() -> None:
    torch.set_num_threads(1)  # see the module docstring
    torch.manual_seed(0)
    split = load_digits_split()
    train_loader, test_loader = make_loaders(split, batch_size=64, augment=True)
    model = build_model("darknet", gamma_init=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    total = EPOCHS * len(train_loader)
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="sma",
        spec=PruneSpec(ratio=0.5),
        prune_at=0.3,
        sparsity=5e-3,
        total_steps=total,
        example_inputs=split.x_train[:2],
    )
    x1 = split.x_train[:1]
    print(f"dense: {count_params(model):,} params, {count_macs(model, x1):,} MACs/sample")

    step = 0
    for epoch in range(EPOCHS):
        for x, y in train_loader:
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            pruner.regularize(step)  # L1 on γ, only before the prune
            optimizer.step()
            step += 1
            model, optimizer = pruner.step(step)  # a new, smaller model at the prune step
            if pruner.pruned_at == step:
                print(
                    f"step {step}: pruned -> {count_params(model):,} params, "
                    f"{count_macs(model, x1):,} MACs/sample"
                )
        print(f"epoch {epoch + 1}: test accuracy {accuracy(model, test_loader):.3f}")


if __name__ == "__main__":
    main()
