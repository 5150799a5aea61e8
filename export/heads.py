"""The classifier heads a pretrained network's embedding gets (`train --backbone`).

`--size head`: one Linear layer (a logistic regression). `--size mlp`: one hidden
layer of MLP_HIDDEN units and a ReLU before it, which bends around what a
speaker does to the embedding: leaving one FSDD speaker out, the speech
embedding's head went from 94.6% (linear) to 95.0% (MLP) with the default
synthetic speakers and speaker copies (export/transfer.py). Dropout trains the
MLP but is not part of the exported head: an eval-mode dropout left in a graph
once made litert-torch quantise a bias with the wrong scale.
"""

from __future__ import annotations

from typing import Any

MLP_HIDDEN = 256
HEAD_SIZES = ("head", "mlp")  # the --size values that are a head on the whole network


def hidden_units(size: str) -> int:
    """The head's hidden units for a --size: MLP_HIDDEN for 'mlp', 0 (linear) otherwise."""
    return MLP_HIDDEN if size == "mlp" else 0


def new_head(embedding_size: int, n_classes: int, hidden: int = 0) -> Any:
    """Linear when `hidden` is 0, else Linear -> ReLU -> Linear (a torch module)."""
    from torch import nn

    if not hidden:
        return nn.Linear(embedding_size, n_classes)
    return nn.Sequential(nn.Linear(embedding_size, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))
