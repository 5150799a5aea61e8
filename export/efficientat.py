"""EfficientAT's MobileNetV3 audio taggers, defined here from the paper.

Schmid, Koutini and Widmer, "Efficient Large-Scale Audio Tagging via
Transformer-to-CNN Knowledge Distillation" (ICASSP 2023): a MobileNetV3-Large
(Howard et al., 2019) scaled by a width multiplier, on a log-mel "image"
[batch, 1, 128 mels, frames], trained on AudioSet. Parameter names follow the
published state_dicts so the released weights load as they are:

    features.0        3x3 stride-2 stem conv + BN + hard-swish
    features.1..15    inverted residuals: [expand 1x1] -> depthwise kxk -> [SE] -> project 1x1
    features.16       1x1 conv to 6x the last block's width + BN + hard-swish
    classifier        mean pool -> Linear -> hard-swish -> dropout -> Linear (527 AudioSet tags)

The pooled output of `features` is the embedding a head trains on. Squeeze-and-
excitation squeezes over frequency and time, two Linear layers with ReLU and a
hard sigmoid, as in MobileNetV3. Every op here (conv, BN folded at export,
hard-swish, hard-sigmoid, mean, Linear) exports to ONNX and full-integer TFLite.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

# MobileNetV3-Large's blocks at width 1.0: (kernel, expanded, out, SE, hard-swish, stride).
LARGE_BLOCKS: tuple[tuple[int, int, int, bool, bool, int], ...] = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)
STEM = 16
LAST_HIDDEN = 1280  # the classifier's hidden width at width 1.0
AUDIOSET_CLASSES = 527


def divisible(value: float, divisor: int = 8) -> int:
    """Round a scaled channel count to a multiple of 8, never below 90% of it
    (MobileNet's rule: channel counts hardware vectorises well)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


@dataclass(frozen=True)
class Width:
    multiplier: float

    def __call__(self, channels: int) -> int:
        return divisible(channels * self.multiplier)


def conv_bn_act(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: nn.Module | None = None
) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act)
    return nn.Sequential(*layers)


class ChannelSE(nn.Module):
    """Squeeze (mean over frequency and time), excite (Linear, ReLU, Linear,
    hard sigmoid), scale each channel."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3))
        s = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(s))))
        return x * s[:, :, None, None]


class SEBlock(nn.Module):
    """The published weights keep SE layers in a list (`conc_se_layers`, one per
    squeezed dimension); the mn04 tagger squeezes channels only."""

    def __init__(self, channels: int, squeezed: int) -> None:
        super().__init__()
        self.conc_se_layers = nn.ModuleList([ChannelSE(channels, squeezed)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conc_se_layers[0](x)


class InvertedResidual(nn.Module):
    def __init__(
        self, cin: int, kernel: int, expanded: int, cout: int, se: bool, hswish: bool, stride: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != cin:
            layers.append(conv_bn_act(cin, expanded, 1, act=_act(hswish)))
        layers.append(conv_bn_act(expanded, expanded, kernel, stride, expanded, _act(hswish)))
        if se:
            layers.append(SEBlock(expanded, divisible(expanded // 4)))
        layers.append(conv_bn_act(expanded, cout, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return out + x if self.residual else out


def _act(hswish: bool) -> nn.Module:
    return nn.Hardswish() if hswish else nn.ReLU()


class MobileNetV3Audio(nn.Module):
    """An EfficientAT tagger. Input [batch, 1, mels, frames]; `embed` gives the
    pooled features [batch, embedding_size], `forward` the AudioSet logits."""

    def __init__(self, width: float = 0.4, n_classes: int = AUDIOSET_CLASSES) -> None:
        super().__init__()
        w = Width(width)
        layers: list[nn.Module] = [conv_bn_act(1, w(STEM), 3, 2, act=nn.Hardswish())]
        cin = w(STEM)
        for kernel, expanded, cout, se, hswish, stride in LARGE_BLOCKS:
            layers.append(InvertedResidual(cin, kernel, w(expanded), w(cout), se, hswish, stride))
            cin = w(cout)
        self.embedding_size = 6 * cin
        layers.append(conv_bn_act(cin, self.embedding_size, 1, act=nn.Hardswish()))
        self.features = nn.Sequential(*layers)
        hidden = w(LAST_HIDDEN)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(self.embedding_size, hidden),
            nn.Hardswish(),
            nn.Dropout(0.2),
            nn.Linear(hidden, n_classes),
        )

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# The distillation student (`--size tiny`): the tagger's first 12 stages (to
# 48 channels at 1/16 of the input's resolution) and a 1x1 conv to 256 channels,
# about 0.1 M parameters. Its int8 TFLite file is about twice its parameter count
# in bytes (per-channel scales and 64-bit zero points), so 13 stages and 192
# channels (0.16 M) came to 318 KB, over the 300 KB a tiny model is allowed.
TINY_STAGES = 12
TINY_WIDTH = 256
# The whole tagger and a linear head; the same with an MLP head (export/heads.py);
# the distillation student.
SIZES = ("head", "mlp", "tiny")


def out_channels(stage: nn.Module) -> int:
    convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


class BackboneClassifier(nn.Module):
    """A new head on a pretrained tagger's embedding, in the kit's window layout:
    [batch, 1, frames, mels] in (the frontend already scaled it), logits out.
    With `stages`, only the tagger's first stages are kept and a 1x1 conv to
    `width` channels (trained from scratch) replaces the rest."""

    def __init__(
        self,
        backbone: MobileNetV3Audio,
        n_classes: int,
        stages: int | None = None,
        width: int = TINY_WIDTH,
        hidden: int = 0,
    ) -> None:
        super().__init__()
        from .heads import new_head

        if stages is None:
            self.features = backbone.features
            size = backbone.embedding_size
            self.new_stages = 0
        else:
            kept = [backbone.features[i] for i in range(stages)]
            top = conv_bn_act(out_channels(kept[-1]), width, 1, act=nn.Hardswish())
            self.features = nn.Sequential(*kept, top)
            size = width
            self.new_stages = 1  # `top`: trains from scratch, like the head
        self.embedding_size = size
        self.head = new_head(size, n_classes, hidden)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x.transpose(2, 3)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
