"""Generated 3×32×32 images of 10 classes, with random flips and crops for training.

Each class is a smooth random colour pattern; an image is its class's pattern, shifted a
little, plus noise. Nothing is downloaded, and a small CNN can learn it in a few epochs,
while a wide one overfits a few hundred images: what regularization is for.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

N_CLASSES = 10
SIDE = 32


def _patterns(seed: int) -> torch.Tensor:
    """One smooth 3×32×32 pattern per class (upsampled 4×4 noise)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn(N_CLASSES, 3, 4, 4, generator=generator)
    return torch.nn.functional.interpolate(coarse, size=(SIDE, SIDE), mode="bicubic")


def make_images(
    n: int, *, seed: int, split_seed: int = 0, noise: float = 3.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images and labels; ``split_seed`` fixes the class patterns, ``seed`` the draw."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(N_CLASSES, (n,), generator=generator)
    images = _patterns(split_seed)[labels]
    shifts = torch.randint(-3, 4, (n, 2), generator=generator)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        images[i] = torch.roll(images[i], shifts=(dy, dx), dims=(1, 2))
    images = images + noise * torch.randn(images.shape, generator=generator)
    return images, labels


class Images(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Images and labels; with ``augment``, a random horizontal flip and a random 32×32 crop
    of the image padded by 4 pixels, drawn anew each time an item is read."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, augment: bool) -> None:
        self.images, self.labels, self.augment = images, labels, augment

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = self.images[index]
        if self.augment:
            if torch.rand(()) < 0.5:
                image = image.flip(-1)
            padded = torch.nn.functional.pad(image, (4, 4, 4, 4), mode="reflect")
            top, left = torch.randint(0, 9, (2,)).tolist()
            image = padded[:, top : top + SIDE, left : left + SIDE]
        return image, self.labels[index]
