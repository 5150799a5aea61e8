"""The classical baseline: multinomial logistic regression on pooled log-mel
statistics (mean and standard deviation of each band over the clip), the model
that music-vs-speech and course projects reach for first. Trained on the same
split as the CNN so that the report shows what the CNN buys."""

from __future__ import annotations

import numpy as np
import torch

from edge_audio.frontend import mfcc


def pooled_stats(features: np.ndarray, n_mfcc: int = 20) -> np.ndarray:
    """[frames, mels] -> mean and std of the log-mel bands and of the MFCCs."""
    coeffs = mfcc(features, min(n_mfcc, features.shape[1]))
    return np.concatenate([features.mean(0), features.std(0), coeffs.mean(0), coeffs.std(0)])


class LogisticBaseline:
    def __init__(self, l2: float = 1e-3) -> None:
        self.l2 = l2

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int) -> LogisticBaseline:
        self.mean = x.mean(0)
        self.std = x.std(0) + 1e-6
        xt = torch.tensor((x - self.mean) / self.std, dtype=torch.float32)
        yt = torch.tensor(y)
        self.linear = torch.nn.Linear(x.shape[1], n_classes)
        optimiser = torch.optim.LBFGS(
            self.linear.parameters(), max_iter=300, line_search_fn="strong_wolfe"
        )

        def closure() -> torch.Tensor:
            optimiser.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.linear(xt), yt)
            loss = loss + self.l2 * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.linear(torch.tensor((x - self.mean) / self.std, dtype=torch.float32))
        return logits.argmax(1).numpy()
