"""Speed of the generated ResNet-50 against a hand-written torchvision-style ResNet-50.

    .venv/bin/python scripts/benchmark_resnet50.py [--batch 8] [--size 224] [--rounds 15]

Keras runs only in a first subprocess (to convert); the timing runs in a second process with
no TensorFlow loaded, because TensorFlow's idle thread pools slow PyTorch in the same
process. Both models are timed alternately in the same process; medians are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def convert(out_dir: Path) -> None:
    code = (
        "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
        "from codegen.keras_import import import_keras\n"
        "import codegen\n"
        "keras = import_keras()\n"
        "m = keras.applications.ResNet50(weights=None, classifier_activation=None)\n"
        f"codegen.convert(m, {str(out_dir)!r}, force=True)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def hand_written_resnet50():
    import torch
    from torch import nn

    class Bottleneck(nn.Module):
        def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
            super().__init__()
            width, out = planes, planes * 4
            self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(out)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None
            if stride != 1 or inplanes != out:
                self.downsample = nn.Sequential(
                    nn.Conv2d(inplanes, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out)
                )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            identity = x if self.downsample is None else self.downsample(x)
            x = self.relu(self.bn1(self.conv1(x)))
            x = self.relu(self.bn2(self.conv2(x)))
            x = self.bn3(self.conv3(x))
            return self.relu(x + identity)

    class ResNet50(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
            blocks, inplanes = [], 64
            for planes, count, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
                for i in range(count):
                    blocks.append(Bottleneck(inplanes, planes, stride if i == 0 else 1))
                    inplanes = planes * 4
            self.layers = nn.Sequential(*blocks)
            self.fc = nn.Linear(2048, 1000)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layers(x)
            return self.fc(torch.flatten(x.mean((2, 3)), 1))

    return ResNet50()


def time_models(out_dir: Path, batch: int, size: int, rounds: int) -> None:
    import torch

    sys.path.insert(0, str(out_dir))
    from model import Resnet50  # noqa: E402

    generated = Resnet50().eval()
    generated.load_state_dict(torch.load(out_dir / "model.pt", weights_only=True))
    hand = hand_written_resnet50().eval()
    x_nhwc = torch.randn(batch, size, size, 3)
    # The same data in channels_last memory, as NCHW: what a torch pipeline would feed.
    x_nchw = x_nhwc.permute(0, 3, 1, 2)
    cases = {"generated (NHWC interface)": (generated, x_nhwc), "hand-written (NCHW)": (hand, x_nchw)}
    times = {name: [] for name in cases}
    with torch.inference_mode():
        for model, x in cases.values():
            for _ in range(2):
                model(x)
        for _ in range(rounds):
            for name, (model, x) in cases.items():
                start = time.perf_counter()
                model(x)
                times[name].append(time.perf_counter() - start)
    base = statistics.median(times["hand-written (NCHW)"])
    print(f"ResNet-50, batch {batch}, {size}x{size}, {torch.get_num_threads()} threads, {rounds} rounds")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<28} median {median * 1000:8.1f} ms   ratio {median / base:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--time-only", metavar="DIR")
    args = parser.parse_args()
    if args.time_only:
        time_models(Path(args.time_only), args.batch, args.size, args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "resnet50"
        convert(out)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run(
            [sys.executable, __file__, "--time-only", str(out), "--batch", str(args.batch),
             "--size", str(args.size), "--rounds", str(args.rounds)],
            check=True, env=env,
        )


if __name__ == "__main__":
    main()
