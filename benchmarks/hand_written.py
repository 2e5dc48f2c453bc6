"""Hand-written PyTorch references: what a person porting these Keras models would write.

Each computes exactly what the Keras model computes (Keras's convolution biases, strides
and TensorFlow's uneven 'same' padding included), so that the generated port's weights load
into it and the outputs can be compared: the benchmark times the same arithmetic, written
two ways. Parameters are declared in the generated module's order, which lets
:func:`load_by_position` copy a generated state_dict across.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    """Keras ResNet50's block: the stride sits on the first 1x1 convolution (ResNet v1)."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(inplanes, planes, 1, stride=stride)
        self.bn1 = nn.BatchNorm2d(planes, eps=1.001e-5)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(planes, eps=1.001e-5)
        self.conv3 = nn.Conv2d(planes, out, 1)
        self.bn3 = nn.BatchNorm2d(out, eps=1.001e-5)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, out, 1, stride=stride), nn.BatchNorm2d(out, eps=1.001e-5)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.bn3(self.conv3(x))
        return self.relu(x + identity)


class ResNet50(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64, eps=1.001e-5)
        self.relu = nn.ReLU(inplace=True)
        # Zero padding before the pool is the same as -inf padding here: inputs are >= 0.
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        blocks, inplanes = [], 64
        for planes, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(count):
                blocks.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
                inplanes = planes * 4
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(2048, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layers(x)
        return self.fc(x.mean((2, 3)))


class InvertedResidual(nn.Module):
    """Keras MobileNetV2's block; a strided depthwise convolution pads one cell after."""

    def __init__(self, inp: int, out: int, expand: int, stride: int) -> None:
        super().__init__()
        hidden = inp * expand
        self.stride = stride
        self.use_res = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [
                nn.Conv2d(inp, hidden, 1, bias=False),
                nn.BatchNorm2d(hidden, eps=1e-3),
                nn.ReLU6(inplace=True),
            ]
        self.expand = nn.Sequential(*layers)
        padding = 1 if stride == 1 else 0
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, stride, padding, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden, eps=1e-3),
            nn.ReLU6(inplace=True),
        )
        self.project = nn.Sequential(
            nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out, eps=1e-3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x)
        if self.stride != 1:
            y = F.pad(y, (0, 1, 0, 1))
        y = self.project(self.depthwise(y))
        return x + y if self.use_res else y


class MobileNetV2(nn.Module):
    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2, bias=False),
            nn.BatchNorm2d(32, eps=1e-3),
            nn.ReLU6(inplace=True),
        )
        blocks, inp = [], 32
        settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2))
        settings += ((6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
        for expand, out, count, stride in settings:
            for i in range(count):
                blocks.append(InvertedResidual(inp, out, expand, stride if i == 0 else 1))
                inp = out
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Conv2d(320, 1280, 1, bias=False),
            nn.BatchNorm2d(1280, eps=1e-3),
            nn.ReLU6(inplace=True),
        )
        self.fc = nn.Linear(1280, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(F.pad(x, (0, 1, 0, 1)))  # TensorFlow's 'same' for a stride-2 3x3
        x = self.head(self.blocks(x))
        return self.fc(x.mean((2, 3)))


class LSTMClassifier(nn.Module):
    """Embedding -> LSTM (last state) -> Linear."""

    def __init__(self, vocab: int, dim: int, units: int, classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, dim)
        self.lstm = nn.LSTM(dim, units, batch_first=True)
        self.fc = nn.Linear(units, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(self.embedding(tokens))
        return self.fc(h[-1])


# The reference for each benchmark model that has one, with its constructor arguments.
REFERENCES = {
    "resnet50": lambda: ResNet50(),
    "mobilenetv2": lambda: MobileNetV2(),
    "lstm_classifier": lambda: LSTMClassifier(20000, 128, 128, 2),
}


def load_by_position(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Copy ``state_dict``'s tensors into ``module`` in declaration order, shapes checked."""
    own = module.state_dict()
    if len(own) != len(state_dict):
        raise ValueError(f"{len(own)} entries in the reference, {len(state_dict)} given")
    mapped = {}
    for (key, mine), (theirs_key, theirs) in zip(own.items(), state_dict.items()):
        if mine.shape != theirs.shape:
            raise ValueError(f"{key} {tuple(mine.shape)} vs {theirs_key} {tuple(theirs.shape)}")
        mapped[key] = theirs
    module.load_state_dict(mapped, strict=True)
