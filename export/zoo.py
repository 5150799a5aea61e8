"""The model zoo: compact CNNs over a log-mel window [batch, 1, frames, mels].

Models take windows already level-normalised by edge_audio.windows.normalise
(the device does that step in NumPy, so int8 models take int8 input directly).
Every model uses only Conv2d (plain or depthwise), BatchNorm (folded at export),
ReLU, pooling, mean/max reductions and Linear, so each exports to ONNX and to
full-integer TFLite without exotic ops.

- `dscnn`: depthwise-separable CNN after Hello Edge (Zhang et al., 2017).
- `bcresnet`: broadcasted residual blocks in the spirit of BC-ResNet (Kim et al.,
  2021): frequency-wise convs on 2-D maps, temporal convs on the frequency-averaged
  1-D map, broadcast back and added.
- `tcresnet`: temporal convolutions after TC-ResNet (Choi et al., 2019): the mel
  bands are the input channels and every conv runs along time only, so each layer
  is a plain (k x 1) conv, a dense matrix product that int8 kernels run fast,
  instead of a 1-channel 2-D conv on the full-resolution map (the DS-CNN's first
  layer is 25% of its MACs and two thirds of its int8 time under XNNPACK).
- `cnn`: the plain conv-BN-ReLU-pool + dense + dropout network of the usual course
  projects, kept as a baseline.
- `vgg`: plain 3x3 conv stages with global mean+max pooling: no depthwise convs,
  which train slowly on CPUs, and no flatten, so long windows stay small (ESC-50).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import nn

from edge_audio.errors import ConfigError

from .presets import MODELS, SIZES


def conv_bn(cin: int, cout: int, kernel, stride=1, groups: int = 1) -> nn.Sequential:
    k = (kernel, kernel) if isinstance(kernel, int) else kernel
    pad = (k[0] // 2, k[1] // 2)
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class DSCNN(nn.Module):
    def __init__(self, n_classes: int, width: int, depth: int) -> None:
        super().__init__()
        layers = [conv_bn(1, width, (10, 4), (2, 2))]
        for i in range(depth):
            stride = (2, 2) if i == 0 else 1  # one more downsampling keeps MACs low
            layers += [conv_bn(width, width, 3, stride, groups=width), conv_bn(width, width, 1)]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(self.dropout(x.mean(dim=(2, 3))))


class BCBlock(nn.Module):
    """Broadcasted residual block: 2-D frequency-wise conv, 1-D temporal conv on
    the frequency mean, broadcast sum, optional residual."""

    def __init__(self, cin: int, cout: int, stride: tuple[int, int]) -> None:
        super().__init__()
        self.transition = conv_bn(cin, cout, 1) if cin != cout else None
        c = cout
        self.freq = nn.Sequential(
            nn.Conv2d(c, c, (1, 3), stride, (0, 1), groups=c, bias=False), nn.BatchNorm2d(c)
        )
        self.temporal = nn.Sequential(
            nn.Conv2d(c, c, (3, 1), 1, (1, 0), groups=c, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 1, bias=False),
            nn.Dropout(0.1),
        )
        self.residual = cin == cout and stride == (1, 1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        if self.transition is not None:
            x = self.transition(x)
        f2 = self.freq(x)
        f1 = self.temporal(f2.mean(dim=3, keepdim=True))  # [B, C, T, 1]
        out = f2 + f1  # broadcast over frequency
        if self.residual:
            out = out + identity
        return self.act(out)


class BCResNet(nn.Module):
    def __init__(self, n_classes: int, width: int) -> None:
        super().__init__()
        w = width
        self.stem = conv_bn(1, 2 * w, (5, 5), (2, 2))
        plan = [
            (2 * w, w, (1, 1)),
            (w, w, (1, 1)),
            (w, int(1.5 * w), (2, 2)),
            (int(1.5 * w), int(1.5 * w), (1, 1)),
            (int(1.5 * w), 2 * w, (2, 2)),
            (2 * w, 2 * w, (1, 1)),
            (2 * w, int(2.5 * w), (1, 1)),
        ]
        self.blocks = nn.Sequential(*[BCBlock(a, b, s) for a, b, s in plan])
        last = int(2.5 * w)
        self.tail = conv_bn(last, 4 * w, 1)
        self.head = nn.Linear(4 * w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tail(self.blocks(self.stem(x)))
        return self.head(x.mean(dim=(2, 3)))


class TCBlock(nn.Module):
    """Two temporal convs with a residual; the first one strided."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int) -> None:
        super().__init__()
        pad = (kernel // 2, 0)
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, (kernel, 1), (stride, 1), pad, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, (kernel, 1), 1, pad, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            conv_bn(cin, cout, 1, (stride, 1)) if cin != cout or stride != 1 else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class TCResNet(nn.Module):
    def __init__(self, n_classes: int, mels: int, channels: tuple[int, ...], kernel: int) -> None:
        super().__init__()
        self.stem = conv_bn(mels, channels[0], (3, 1))
        self.blocks = nn.Sequential(*[TCBlock(a, b, kernel, 2) for a, b in pairwise(channels)])
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(channels[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.squeeze(1).transpose(1, 2).unsqueeze(-1)  # [B, mels, frames, 1]: bands as channels
        x = self.blocks(self.stem(x))
        return self.head(self.dropout(x.mean(dim=(2, 3))))


class PlainCNN(nn.Module):
    def __init__(self, n_classes: int, width: int, input_shape: tuple[int, int]) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(1, width, 3),
            nn.MaxPool2d(2),
            conv_bn(width, 2 * width, 3),
            nn.MaxPool2d(2),
            conv_bn(2 * width, 4 * width, 3),
            nn.MaxPool2d(2),
        )
        frames, mels = input_shape
        flat = 4 * width * (frames // 8) * (mels // 8)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, 64),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5),
            nn.Linear(64, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class VGG(nn.Module):
    def __init__(self, n_classes: int, stages: tuple[tuple[int, int], ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        for i, (channels, convs) in enumerate(stages):
            for _ in range(convs):
                layers.append(conv_bn(cin, channels, 3))
                cin = channels
            if i < len(stages) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(2 * cin, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        pooled = torch.cat([x.mean(dim=(2, 3)), torch.amax(x, dim=(2, 3))], dim=1)
        return self.head(self.dropout(pooled))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    size: str
    n_classes: int
    input_shape: tuple[int, int]  # (frames, mels)


def build_model(spec: ModelSpec) -> nn.Module:
    from .pretrained import BACKBONES, classifier_on, new_network

    if spec.name in BACKBONES:  # weights come from the run's checkpoint
        from .efficientat import SIZES as BACKBONE_SIZES
        from .efficientat import TINY_STAGES
        from .heads import HEAD_SIZES, hidden_units

        backbone = BACKBONES[spec.name]
        if backbone.family == "speech-embedding" and spec.size not in HEAD_SIZES:
            raise ConfigError(f"{spec.name} comes as 'head' or 'mlp' only (the whole network)")
        if spec.size not in BACKBONE_SIZES:
            raise ConfigError(f"{spec.name} comes as 'head' or 'mlp' (the whole network) or 'tiny'")
        stages = TINY_STAGES if spec.size == "tiny" else None
        frames = spec.input_shape[0]
        network = new_network(backbone)
        hidden = hidden_units(spec.size)
        return classifier_on(backbone, network, spec.n_classes, frames, stages, hidden)
    if spec.name not in SIZES:
        raise ConfigError(f"unknown model '{spec.name}' (choose from {', '.join(MODELS)})")
    if spec.size not in SIZES[spec.name]:
        choices = ", ".join(SIZES[spec.name])
        raise ConfigError(f"unknown size '{spec.size}' for {spec.name} (choose from {choices})")
    opts = SIZES[spec.name][spec.size]
    if spec.name == "dscnn":
        return DSCNN(spec.n_classes, opts["width"], opts["depth"])
    if spec.name == "bcresnet":
        return BCResNet(spec.n_classes, opts["width"])
    if spec.name == "tcresnet":
        return TCResNet(spec.n_classes, spec.input_shape[1], opts["channels"], opts["kernel"])
    if spec.name == "vgg":
        return VGG(spec.n_classes, opts["stages"])
    return PlainCNN(spec.n_classes, opts["width"], spec.input_shape)


@dataclass(frozen=True)
class Profile:
    params: int
    macs: int  # multiply-accumulates per inference (conv and linear layers)
    int8_bytes: int  # estimate: one byte a weight, four a bias/scale per output channel

    def describe(self) -> str:
        return (
            f"{self.params:,} parameters, {self.macs / 1e6:.2f} M MACs per inference, "
            f"~{self.int8_bytes / 1024:.0f} KB as int8"
        )


def profile(model: nn.Module, input_shape: tuple[int, int]) -> Profile:
    """Count parameters, and MACs with forward hooks on conv and linear layers."""
    macs = 0

    def count(module: nn.Module, _inputs, output: torch.Tensor) -> None:
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            per_output = (
                module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            )
            macs += output.numel() * per_output
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, *input_shape))
    model.train(was_training)
    for hook in hooks:
        hook.remove()
    weights = sum(
        m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    channels = sum(
        m.weight.shape[0] for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    )
    params = sum(p.numel() for p in model.parameters())
    return Profile(params, int(macs), int(weights + 8 * channels))
