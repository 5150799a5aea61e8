"""Google's speech embedding (the keyword-spotting network openWakeWord builds
its wake words on), defined here and loaded from the weights of its ONNX export.

The network is a plain stack of 20 convolutions over 76 frames x 32 mel bands
(0.76 s of 16 kHz audio, 10 ms hop; the frontend is presets.SPEECH_EMBEDDING).
Each of the first 19 convolutions is followed by a leaky ReLU (slope 0.2) and a
floor at -0.4, with max-pooling after every fourth; the last one maps the
remaining 3 x 1 cells to a 96-d embedding. Kernels alternate 1x3 (across bands,
padded to keep the band count) and 3x1 (across time, unpadded), so the 76 frames
shrink to one.

The ONNX file is the source of truth for the weights only: its graph is read for
the convolution weights in order, and a layer whose shape differs from the
architecture below is an error, so a different network is never loaded silently.

A window longer than 76 frames is covered by sub-windows every SUB_HOP frames
(the last aligned to the end); the classifier pools their embeddings by mean and
max, which makes it indifferent to where in the window the word sits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

FRAMES = 76  # one embedding's input: 0.76 s
EMBEDDING = 96
SUB_HOP = 16  # frames between sub-windows of a longer window (80 ms, as openWakeWord)
LEAK = 0.2
FLOOR = -0.4
# (out channels, kernel) of the 20 convolutions; max-pooling (time, bands) after
# the convolutions named in POOLS.
LAYERS: tuple[tuple[int, tuple[int, int]], ...] = (
    (24, (3, 3)),
    (24, (1, 3)),
    (24, (3, 1)),
    (48, (1, 3)),
    (48, (3, 1)),
    (48, (1, 3)),
    (48, (3, 1)),
    (72, (1, 3)),
    (72, (3, 1)),
    (72, (1, 3)),
    (72, (3, 1)),
    (96, (1, 3)),
    (96, (3, 1)),
    (96, (1, 3)),
    (96, (3, 1)),
    (96, (1, 3)),
    (96, (3, 1)),
    (96, (1, 3)),
    (96, (3, 1)),
    (96, (3, 1)),
)
POOLS = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}


class Floor(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp_min(x, FLOOR)


class SpeechEmbedding(nn.Module):
    """[batch, 1, 76 frames, 32 bands] in the frontend's units -> [batch, 96]."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 1
        last = len(LAYERS) - 1
        for i, (cout, kernel) in enumerate(LAYERS):
            padding = (0, kernel[1] // 2)  # keep the bands, let time shrink
            layers.append(nn.Conv2d(cin, cout, kernel, padding=padding, bias=i != last))
            if i != last:
                layers += [nn.LeakyReLU(LEAK), Floor()]
            if i in POOLS:
                layers.append(nn.MaxPool2d(POOLS[i]))
            cin = cout
        self.body = nn.Sequential(*layers)
        self.embedding_size = EMBEDDING

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)

    def convs(self) -> list[nn.Conv2d]:
        return [m for m in self.body if isinstance(m, nn.Conv2d)]


def sub_window_starts(frames: int) -> list[int]:
    """Where the 76-frame sub-windows of a `frames`-long window start."""
    if frames < FRAMES:
        raise ValueError(f"the speech embedding needs windows of at least {FRAMES} frames")
    last = frames - FRAMES
    starts = list(range(0, last + 1, SUB_HOP))
    if starts[-1] != last:
        starts.append(last)
    return starts


class SpeechEmbeddingPool(nn.Module):
    """[batch, 1, frames, 32] -> [batch, 192]: the mean and max over the
    sub-windows' embeddings. Static slices, so it exports to ONNX and TFLite."""

    def __init__(self, network: SpeechEmbedding, frames: int) -> None:
        super().__init__()
        self.network = network
        self.starts = sub_window_starts(frames)
        self.embedding_size = 2 * network.embedding_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        parts = torch.cat([x[:, :, s : s + FRAMES, :] for s in self.starts], dim=0)
        e = self.network(parts).reshape(len(self.starts), batch, -1)
        return torch.cat([e.mean(dim=0), e.amax(dim=0)], dim=1)


class SpeechEmbeddingClassifier(nn.Module):
    """A new head (export/heads.py) on the pooled speech embedding, in the kit's
    window layout: [batch, 1, frames, mels] in, logits out."""

    def __init__(
        self, network: SpeechEmbedding, n_classes: int, frames: int, hidden: int = 0
    ) -> None:
        super().__init__()
        from .heads import new_head

        self.pool = SpeechEmbeddingPool(network, frames)
        self.embedding_size = self.pool.embedding_size
        self.head = new_head(self.embedding_size, n_classes, hidden)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(x))


def load_onnx_weights(network: SpeechEmbedding, path: Path) -> SpeechEmbedding:
    """Copy the convolution weights of the ONNX export into `network`, in graph
    order; ValueError when the file is not this architecture."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    initial = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    ours = network.convs()
    if len(convs) != len(ours):
        raise ValueError(f"{path}: {len(convs)} convolutions, the speech embedding has {len(ours)}")
    with torch.no_grad():
        for i, (node, conv) in enumerate(zip(convs, ours, strict=True)):
            weight = initial[node.input[1]]
            if tuple(weight.shape) != tuple(conv.weight.shape):
                raise ValueError(
                    f"{path}: convolution {i} has shape {weight.shape}, "
                    f"expected {tuple(conv.weight.shape)}"
                )
            conv.weight.copy_(torch.from_numpy(np.array(weight, dtype=np.float32)))
            if conv.bias is not None:
                conv.bias.copy_(
                    torch.from_numpy(np.array(initial[node.input[2]], dtype=np.float32))
                )
    return network.eval()
