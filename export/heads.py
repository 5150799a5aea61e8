"""The classifier heads a pretrained network's embedding gets (`train --backbone`),
and how they are fitted.

`--size head`: one Linear layer (a logistic regression, L-BFGS). `--size mlp`:
one hidden layer of MLP_HIDDEN units and a ReLU before it, which bends around
what a speaker does to the embedding. Dropout trains the MLP but is not part of
the exported head: an eval-mode dropout left in a graph once made litert-torch
quantise a bias with the wrong scale.

The linear head's L2 penalty is chosen per fit from L2_GRID by cross-validation
over the training groups alone (`--head-l2 auto`, the default): how much to
regularise depends on how far unseen speakers or recordings sit from the ones
trained on, which only held-out groups show. Leaving one FSDD speaker out, the
speech embedding's head went from 94.6% (a fixed 1e-3) to 95.2% (min 90.6%),
the choice made on the four training speakers of each fold; ESC-50 and
music/speech stayed where they were in fp32 (90.8%; 99.3% of 1 s segments),
though music/speech's int8 files lost more (98.9% against 99.2%), so its
shipped bundle keeps a fixed 1e-3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

MLP_HIDDEN = 256
HEAD_SIZES = ("head", "mlp")  # the --size values that are a head on the whole network
# Half-decades around the penalty that suits standardised embeddings. The
# criterion is accuracy, so neighbours often tie: a tie goes to the stronger
# penalty, the simpler head (scikit-learn's LogisticRegressionCV does the same).
L2_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
FALLBACK_L2 = 1e-3  # when the training side has too few groups to choose by


def hidden_units(size: str) -> int:
    """The head's hidden units for a --size: MLP_HIDDEN for 'mlp', 0 (linear) otherwise."""
    return MLP_HIDDEN if size == "mlp" else 0


def new_head(embedding_size: int, n_classes: int, hidden: int = 0) -> Any:
    """Linear when `hidden` is 0, else Linear -> ReLU -> Linear (a torch module)."""
    from torch import nn

    if not hidden:
        return nn.Linear(embedding_size, n_classes)
    return nn.Sequential(nn.Linear(embedding_size, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


@dataclass(frozen=True)
class L2Choice:
    """The linear head's penalty and how it was come by."""

    l2: float
    how: str  # "given", "chosen" (cross-validated over groups) or "fallback"
    scores: dict[float, float]  # inner cross-validated accuracy per penalty, when chosen
    folds: int = 0  # inner folds the choice was made on

    def describe(self) -> str:
        if self.how == "given":
            return f"head L2 {self.l2:g} (--head-l2)"
        if self.how == "fallback":
            return (
                f"head L2 {self.l2:g}: the training side has too few groups to choose by, "
                "so the fixed default"
            )
        return (
            f"head L2 {self.l2:g} chosen by {self.folds}-fold cross-validation over the "
            f"training groups ({100 * self.scores[self.l2]:.1f}%; "
            f"{100 * min(self.scores.values()):.1f}-{100 * max(self.scores.values()):.1f}% "
            f"over {len(self.scores)} penalties)"
        )

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"l2": self.l2, "how": self.how}
        if self.scores:
            out["folds"] = self.folds
            out["cv_accuracy"] = {f"{k:g}": round(v, 6) for k, v in self.scores.items()}
        return out


def choose_l2(
    score: Callable[[float], float], folds: int, grid: tuple[float, ...] = L2_GRID
) -> L2Choice:
    """The penalty of `grid` with the best `score` (cross-validated accuracy);
    ties go to the stronger penalty."""
    if not grid:
        raise ValueError("choose_l2 needs at least one penalty to try")
    scores = {float(l2): float(score(l2)) for l2 in grid}
    best = max(scores.values())
    chosen = max(l2 for l2, s in scores.items() if s >= best - 1e-9)
    return L2Choice(chosen, "chosen", scores, folds)


@dataclass(frozen=True)
class Head:
    """logits = embedding @ weight.T + bias, over raw (unstandardised) embeddings."""

    weight: np.ndarray  # [classes, embedding]
    bias: np.ndarray  # [classes]

    def probabilities(self, embeddings: np.ndarray) -> np.ndarray:
        logits = embeddings @ self.weight.T + self.bias
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return np.asarray(e / e.sum(axis=1, keepdims=True))


def fit_head(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float, seed: int) -> Head:
    """Multinomial logistic regression by L-BFGS on standardised inputs; the
    standardisation is folded into the returned weights."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xs = torch.from_numpy(((x - mean) / std).astype(np.float32))
    ys = torch.from_numpy(y.astype(np.int64))
    layer = torch.nn.Linear(x.shape[1], n_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimiser = torch.optim.LBFGS(
        layer.parameters(), lr=1.0, max_iter=500, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(xs), ys) + l2 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    w = layer.weight.detach().numpy() / std[None, :]
    b = layer.bias.detach().numpy() - w @ mean
    return Head(w.astype(np.float32), b.astype(np.float32))


MLP_EPOCHS, MLP_BATCH, MLP_LR, MLP_DECAY = 60, 128, 1e-3, 1e-2
MLP_DROPOUT = (0.2, 0.5)  # on the embedding, on the hidden layer
MLP_RECIPE = (
    f"AdamW, {MLP_EPOCHS} epochs, batches of {MLP_BATCH}, learning rate {MLP_LR:g}, weight "
    f"decay {MLP_DECAY:g}, dropout {MLP_DROPOUT[0]:g}/{MLP_DROPOUT[1]:g}, label smoothing 0.1"
)


def fit_mlp(x: np.ndarray, y: np.ndarray, n_classes: int, hidden: int, seed: int) -> Any:
    """The MLP head (new_head with `hidden` units) on standardised embeddings, trained with
    dropout, returned without it and with the standardisation folded into its
    first layer, so it takes raw embeddings as the exported model does."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    xs = torch.from_numpy(((x - mean) / std).astype(np.float32))
    ys = torch.from_numpy(y.astype(np.int64))
    head = new_head(x.shape[1], n_classes, hidden)
    first, act, last = head
    trainer = torch.nn.Sequential(
        torch.nn.Dropout(MLP_DROPOUT[0]), first, act, torch.nn.Dropout(MLP_DROPOUT[1]), last
    )
    optimiser = torch.optim.AdamW(trainer.parameters(), lr=MLP_LR, weight_decay=MLP_DECAY)
    order = torch.Generator().manual_seed(seed)
    trainer.train()
    for _ in range(MLP_EPOCHS):
        permutation = torch.randperm(len(xs), generator=order)
        for start in range(0, len(xs), MLP_BATCH):
            rows = permutation[start : start + MLP_BATCH]
            loss = torch.nn.functional.cross_entropy(
                trainer(xs[rows]), ys[rows], label_smoothing=0.1
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():  # (x - mean) / std @ W.T + b == x @ (W / std).T + (b - W / std @ mean)
        scaled = first.weight / torch.from_numpy(std.astype(np.float32))[None, :]
        first.bias -= scaled @ torch.from_numpy(mean.astype(np.float32))
        first.weight.copy_(scaled)
    return head.eval()
