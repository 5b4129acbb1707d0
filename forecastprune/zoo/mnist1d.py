"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"): a public 1-D benchmark, generated here.

MNIST-1D turns ten hand-made 1-D digit templates into 40-sample signals by random padding,
scaling, translation, correlated and i.i.d. noise and shear. Its authors publish baselines on
the default set (4,000 training / 1,000 test signals): logistic regression 32 %, MLP 68 %,
CNN 94 %, GRU 91 %, human 96 % (the table "Comparing MNIST and MNIST-1D" in the README of
github.com/greydanus/mnist1d; paper: arXiv:2011.14439).

The ``mnist1d`` package (``pip install 'forecastprune[mnist1d]'``) holds the generator. Its
``get_dataset`` downloads a pickle from GitHub; this module never calls it — it runs the
generator, ``make_dataset``, with the package's default arguments and only the number of
samples raised, so the data is the published distribution, made locally and fully determined
by the generator's seed. The generator standardises the whole set with one mean and standard
deviation (two scalars over every signal, test included); that is the benchmark's own
definition and is kept as it is.

``make_dataset`` seeds Python's and numpy's global generators; the state of both is restored
afterwards so generating data never changes a caller's random numbers. Generating costs about
0.25 ms per signal, so each set is made once per process and cached.
"""

from __future__ import annotations

import functools
import random

import numpy as np
import torch

from ..errors import ConfigError

#: the generator's default seed (``get_dataset_args()["seed"]``)
GENERATOR_SEED = 42
#: length of every generated signal (``final_seq_length``)
SIGNAL_LENGTH = 40


def tensors(
    n_train: int, n_test: int, seed: int = GENERATOR_SEED
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`generate`'s arrays as fresh tensors: (N, 1, 40) float32 signals (one input
    channel for Conv1d) and int64 labels.

    Raises:
        ConfigError: as :func:`generate`.
    """
    x_train, y_train, x_test, y_test = generate(n_train, n_test, seed)
    return (
        _signals(x_train),
        torch.from_numpy(y_train.astype(np.int64)),  # a copy: the cached arrays are read-only
        _signals(x_test),
        torch.from_numpy(y_test.astype(np.int64)),
    )


def _signals(x: np.ndarray) -> torch.Tensor:
    """(N, L) float64 → (N, 1, L) float32, a copy."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).unsqueeze(1)


@functools.lru_cache(maxsize=4)
def generate(
    n_train: int, n_test: int, seed: int = GENERATOR_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate MNIST-1D with the package's default arguments and ``n_train + n_test`` samples.

    Args:
        n_train: training signals.
        n_test: test signals.
        seed: the generator's seed.

    Returns:
        ``(x_train, y_train, x_test, y_test)``: (N, 40) float64 signals and int64 labels. The
        arrays are cached and shared between calls: do not modify them.

    Raises:
        ConfigError: when the sizes are not positive or their sum is not a multiple of 10 (the
            generator makes the same number of signals per class), or when the ``mnist1d``
            package is not installed.
    """
    total = int(n_train) + int(n_test)
    if min(int(n_train), int(n_test)) < 1 or total % 10:
        raise ConfigError(
            f"MNIST-1D needs positive train and test sizes summing to a multiple of 10 (the "
            f"generator makes equal numbers per class); got {n_train} and {n_test}"
        )
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ConfigError(
            "the MNIST-1D task needs the mnist1d package: pip install 'forecastprune[mnist1d]'"
        ) from None
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = total, int(n_train) / total, int(seed)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
    arrays = (data["x"], data["y"], data["x_test"], data["y_test"])
    for array in arrays:
        array.setflags(write=False)  # cached and shared
    if (len(arrays[1]), len(arrays[3])) != (n_train, n_test):
        raise ConfigError(  # the generator splits by a float fraction; say so if it rounds
            f"the generator split {total} signals into {len(arrays[1])} / {len(arrays[3])}, "
            f"not {n_train} / {n_test}; pick sizes whose ratio is exact"
        )
    return arrays
