"""scikit-learn's bundled digits as PyTorch tensors and loaders.

The digits set (1,797 grey 8×8 images, ten classes) ships inside scikit-learn, so demos and tests
train on real data without any download. The split is stratified and fully determined by its
seed; pixels are standardised with the *training* mean and standard deviation only, so the test
set never leaks into preprocessing.

Digits is easy: a dense CNN reaches ~99 % test accuracy in a few epochs. Training-time
augmentation (random integer shifts plus Gaussian noise) keeps the task hard enough that
BN-L1 sparsity separates useful channels from idle ones instead of shrinking every γ alike.

Named tasks (:data:`TASKS`, chosen by ``task`` in the train config) fix the split and the
augmentation. ``digits`` is the above (1,437 training / 360 test images, so one test image is
0.28 accuracy points and every method lands near 99 %). ``digits-hard`` trains on a fifth of
the images (359) and tests on the other four fifths (1,438: one image is 0.07 points), with
twice the shift and three times the noise: the dense model is no longer saturated, so the
channels a method removes show in its accuracy. It is the same kind of problem as the first —
small-data image classification by a CNN whose capacity exceeds what the data pins down — and
nothing about it favours a method: every method sees the same images, augmentation draws and
budget. A third task, ``shapes``, is not digits at all: 10 classes of generated RGB shapes
(:class:`ShapesTask`, 1,536 training / 512 test images of 16×16).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..errors import ConfigError
from .mnist1d import GENERATOR_SEED, SIGNAL_LENGTH

#: side length of the original digits images
DIGITS_SIDE = 8
#: the digits pixel intensities run from 0 to this value
DIGITS_MAX = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """A deterministic train/test split of the digits set.

    Attributes:
        x_train: (N_train, C, S, S) float32 standardised images (C = 1 for digits, S = 8 ×
            upscale; C = 3 for shapes).
        y_train: (N_train,) int64 labels.
        x_test: (N_test, 1, S, S) float32 images, standardised with the training statistics.
        y_test: (N_test,) int64 labels.
        background: the standardised value of a blank pixel (used to fill shifted-in borders).
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    background: float

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1


@dataclass(frozen=True)
class DigitsTask:
    """A named digits task: how the images are split and how training batches are augmented.

    Attributes:
        name: the task's name in :data:`TASKS`.
        test_fraction: share of the 1,797 images held out for testing.
        max_shift: largest random shift, in 8×8 pixels, of a training image.
        noise_std: Gaussian noise added to training pixels (standardised units).
    """

    name: str
    test_fraction: float
    max_shift: int
    noise_std: float
    #: input image channels, and where the images come from (recorded in run metadata)
    channels: int = 1
    dataset: str = "sklearn-digits"

    def split(self, upscale: int = 1) -> DigitsSplit:
        """The task's fixed split (the same for every seed, so runs share their test images)."""
        return load_digits_split(self.test_fraction, seed=0, upscale=upscale)


@dataclass(frozen=True)
class Mnist1dTask:
    """A MNIST-1D task (:mod:`.mnist1d`): how many signals to generate for training and testing.

    It has :class:`DigitsTask`'s face (``split``, ``max_shift``, ``noise_std``, ``dataset``) so
    the training paths take either. The generator already draws a fresh transformation for
    every signal, so there is no batch augmentation.

    Attributes:
        name: the task's name in :data:`TASKS`.
        n_train: training signals (a multiple of 10 together with ``n_test``).
        n_test: test signals.
        seed: the generator's seed; the same seed always gives the same signals.
        channels: input channels (one signal per sample).
    """

    name: str
    n_train: int
    n_test: int
    seed: int = GENERATOR_SEED
    channels: int = 1
    max_shift: int = 0
    noise_std: float = 0.0
    dataset: str = "mnist1d"

    def split(self, upscale: int = 1) -> DigitsSplit:
        """The generated train/test split (the same for every training seed).

        Raises:
            ConfigError: on ``upscale`` other than 1 (it resizes digits images only), or when
                the ``mnist1d`` package is missing.
        """
        from .mnist1d import tensors

        if upscale != 1:
            raise ConfigError(
                f"upscale resizes the 8×8 digits images; task {self.name!r} has 1-D signals of "
                f"length {SIGNAL_LENGTH}, so upscale must be 1 (got {upscale})"
            )
        x_train, y_train, x_test, y_test = tensors(self.n_train, self.n_test, self.seed)
        return DigitsSplit(x_train, y_train, x_test, y_test, background=0.0)


@dataclass(frozen=True)
class ShapesTask:
    """The generated 10-class RGB shapes task (:mod:`forecastprune.zoo.shapes`).

    The same interface as :class:`DigitsTask`. Training and test images are drawn with
    different fixed seeds; pixels are standardised per channel with the training statistics.
    ``max_shift`` is in units of 8 pixels' worth of the image, as for digits (a 16-pixel image
    shifts by up to 2 pixels per unit).

    Attributes:
        name: the task's name in :data:`TASKS`.
        n_train: training images.
        n_test: test images.
        side: image side in pixels.
        max_shift: largest random shift of a training image (see above).
        noise_std: Gaussian noise added to training pixels (standardised units).
    """

    name: str
    n_train: int
    n_test: int
    side: int
    max_shift: int
    noise_std: float
    channels: int = 3
    dataset: str = "generated-shapes"

    def split(self, upscale: int = 1) -> DigitsSplit:
        """The task's fixed split (the same for every seed, so runs share their test images)."""
        from .shapes import draw_shapes

        if int(upscale) != upscale or upscale < 1:
            raise ConfigError(f"upscale must be a whole number >= 1; got {upscale!r}")
        train, y_train = draw_shapes(self.n_train, self.side, seed=0)
        test, y_test = draw_shapes(self.n_test, self.side, seed=1)
        pixels = train.reshape(-1, 3).astype(np.float64)
        mean, std = pixels.mean(0), pixels.std(0)

        def tensor(images: np.ndarray) -> torch.Tensor:
            x = torch.from_numpy(((images - mean) / std).astype(np.float32)).permute(0, 3, 1, 2)
            if upscale > 1:
                x = F.interpolate(x, scale_factor=int(upscale), mode="bilinear")
            return x.contiguous()

        return DigitsSplit(
            x_train=tensor(train),
            y_train=torch.from_numpy(y_train),
            x_test=tensor(test),
            y_test=torch.from_numpy(y_test),
            background=0.0,  # shifted-in borders take the mean colour
        )


#: the tasks ``task`` in the train config may name; ``mnist1d`` is the public 1-D benchmark
#: (20,000 generated training / 5,000 test signals, see :mod:`.mnist1d`), for the ``cnn1d``
#: model; ``shapes`` is the generated RGB task of the corpus
TASKS: dict[str, DigitsTask | Mnist1dTask | ShapesTask] = {
    "digits": DigitsTask("digits", test_fraction=0.2, max_shift=1, noise_std=0.1),
    "digits-hard": DigitsTask("digits-hard", test_fraction=0.8, max_shift=2, noise_std=0.3),
    "mnist1d": Mnist1dTask("mnist1d", n_train=20000, n_test=5000),
    "shapes": ShapesTask("shapes", n_train=1536, n_test=512, side=16, max_shift=1, noise_std=0.3),
}


def get_task(name: str) -> DigitsTask | Mnist1dTask | ShapesTask:
    """The task called ``name``.

    Raises:
        ConfigError: naming the valid tasks when ``name`` is not one of them.
    """
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]


def load_digits_split(test_fraction: float = 0.2, seed: int = 0, upscale: int = 1) -> DigitsSplit:
    """Load scikit-learn's digits and split them into standardised train/test tensors.

    Args:
        test_fraction: share of the images held out for testing, strictly between 0 and 1.
        seed: fixes the split; the same seed always gives the same split.
        upscale: integer factor for bilinear upsampling (1 keeps 8×8; 2 gives 16×16), for
            models whose downsampling path needs larger inputs.

    Returns:
        The split, with every class represented in train and test in its overall proportion.

    Raises:
        ConfigError: on a test fraction outside (0, 1) or an upscale factor below 1.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(
            f"test_fraction must lie strictly between 0 and 1; got {test_fraction}. "
            "Use e.g. 0.2 to hold out a fifth of the images"
        )
    if int(upscale) != upscale or upscale < 1:
        raise ConfigError(f"upscale must be a whole number >= 1; got {upscale!r}")
    digits = load_digits()
    images = digits.images.astype(np.float32) / DIGITS_MAX
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=test_fraction, random_state=seed, stratify=digits.target
    )
    mean, std = float(x_train.mean()), float(x_train.std())
    return DigitsSplit(
        x_train=_to_tensor(x_train, mean, std, int(upscale)),
        y_train=torch.as_tensor(y_train, dtype=torch.int64),
        x_test=_to_tensor(x_test, mean, std, int(upscale)),
        y_test=torch.as_tensor(y_test, dtype=torch.int64),
        background=(0.0 - mean) / std,
    )


def _to_tensor(images: np.ndarray, mean: float, std: float, upscale: int) -> torch.Tensor:
    x = torch.from_numpy((images - mean) / std).unsqueeze(1)
    if upscale > 1:
        x = F.interpolate(x, scale_factor=upscale, mode="bilinear", align_corners=False)
    return x.contiguous()


class ShiftNoise:
    """Batch augmentation: a random integer shift per image plus Gaussian pixel noise.

    Used as a DataLoader ``collate_fn``; its own generator keeps runs reproducible.

    Args:
        max_shift: largest shift in pixels along each axis (borders fill with ``background``).
        noise_std: standard deviation of the added noise, in standardised pixel units.
        background: the value shifted-in pixels take.
        seed: seeds the augmentation generator.
    """

    def __init__(
        self, max_shift: int = 1, noise_std: float = 0.1, background: float = 0.0, seed: int = 0
    ) -> None:
        if max_shift < 0 or noise_std < 0:
            raise ConfigError(
                f"max_shift and noise_std must be >= 0; got {max_shift} and {noise_std}"
            )
        self.max_shift = int(max_shift)
        self.noise_std = float(noise_std)
        self.background = float(background)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
        images = torch.stack([x for x, _ in batch])
        labels = torch.stack([y for _, y in batch])
        if self.max_shift:
            images = self._shift(images)
        if self.noise_std:
            noise = torch.randn(images.shape, generator=self.generator)
            images = images + self.noise_std * noise
        return images, labels

    def _shift(self, images: torch.Tensor) -> torch.Tensor:
        m = self.max_shift
        side = images.shape[-1]
        padded = F.pad(images, (m, m, m, m), value=self.background)
        offsets = torch.randint(0, 2 * m + 1, (images.shape[0], 2), generator=self.generator)
        crops = [
            padded[i, :, dy : dy + side, dx : dx + side]
            for i, (dy, dx) in enumerate(offsets.tolist())
        ]
        return torch.stack(crops)


def make_loaders(
    split: DigitsSplit,
    batch_size: int = 64,
    *,
    augment: bool = False,
    max_shift: int = 1,
    noise_std: float = 0.1,
    seed: int = 0,
    eval_batch_size: int = 512,
) -> tuple[DataLoader, DataLoader]:
    """Training and test loaders over a split.

    Args:
        split: the data, from :func:`load_digits_split`.
        batch_size: training batch size; the last partial batch is dropped so every step sees
            the same number of images (γ trajectories then have no odd last-step jumps).
        augment: apply :class:`ShiftNoise` to training batches (shift scaled by the upscale).
        max_shift: largest shift in original 8×8 pixels when augmenting.
        noise_std: Gaussian noise level when augmenting.
        seed: seeds the shuffling and the augmentation.
        eval_batch_size: test batch size.

    Returns:
        ``(train_loader, test_loader)``; the test loader neither shuffles nor augments.

    Raises:
        ConfigError: on a batch size below 1 or above the training set size.
    """
    n_train = len(split.y_train)
    if not 1 <= batch_size <= n_train:
        raise ConfigError(
            f"batch_size must lie between 1 and the {n_train} training images; got {batch_size}"
        )
    collate = None
    if augment:
        scale = split.image_size // DIGITS_SIDE
        collate = ShiftNoise(max_shift * scale, noise_std, split.background, seed=seed + 1)
    train = DataLoader(
        TensorDataset(split.x_train, split.y_train),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
        collate_fn=collate,
    )
    test = DataLoader(TensorDataset(split.x_test, split.y_test), batch_size=eval_batch_size)
    return train, test
