"""Residual networks for 32x32 images: a fast ResNet-9-style net and the CIFAR ResNet-18.

`FastResNet` follows the layout of the CIFAR-10 speed runs (Page, "How to train your ResNet",
2018: 94% in 24 epochs, 79 s on one V100; Jordan's airbench, 2024, pushed it to 3.29 s on one
A100 with a smaller net and more tricks): three stages that double the width and halve the
resolution, a residual pair after the first and the last, max-pooling, and scaled logits.
`ResNet18` is He et al.'s 18-layer ResNet with the usual CIFAR stem (3x3 conv, no max-pool).
Models only: no data, no training.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(c_in: int, c_out: int, activation: type[nn.Module], stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        activation(),
    )


class ResidualPair(nn.Module):
    """x + f(x) with f two conv-BN-activation layers of constant width."""

    def __init__(self, width: int, activation: type[nn.Module]):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(width, width, activation), conv_bn(width, width, activation)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FastResNet(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        width: int = 64,
        activation: type[nn.Module] = nn.ReLU,
        logit_scale: float = 0.125,
    ):
        super().__init__()
        w = (width, 2 * width, 4 * width, 8 * width)
        self.stem = conv_bn(3, w[0], activation)
        self.stages = nn.Sequential(
            conv_bn(w[0], w[1], activation), nn.MaxPool2d(2), ResidualPair(w[1], activation),
            conv_bn(w[1], w[2], activation), nn.MaxPool2d(2),
            conv_bn(w[2], w[3], activation), nn.MaxPool2d(2), ResidualPair(w[3], activation),
        )  # fmt: skip
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(w[3], num_classes, bias=False)
        # Small logits at initialisation: the speed runs scale the output by 1/8.
        self.logit_scale = logit_scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(images)))) * self.logit_scale


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, activation: type[nn.Module]):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(c_in, c_out, activation, stride),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.activation = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(
        self, num_classes: int = 10, width: int = 64, activation: type[nn.Module] = nn.ReLU
    ):
        super().__init__()
        self.stem = conv_bn(3, width, activation)
        blocks: list[nn.Module] = []
        c_in = width
        for stage in range(4):
            c_out = width * 2**stage
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                blocks.append(BasicBlock(c_in, c_out, stride, activation))
                c_in = c_out
        self.stages = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.stages(self.stem(images))))


MODELS: dict[str, type[nn.Module]] = {"fast_resnet": FastResNet, "resnet18": ResNet18}
