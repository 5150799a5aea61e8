"""Streaming rational resampling: chunks in, chunks out, any chunk size.

The same anti-aliasing filter as scipy.signal.resample_poly, applied causally:
the output is resample_poly's, delayed by half the filter length, which the
stream reports as `delay_seconds` so that event times can be corrected.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import firwin, upfirdn


class StreamingResampler:
    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
        ratio = Fraction(dst_rate, src_rate)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down == 1
        # resample_poly's default filter: Kaiser-windowed sinc, 10 zero crossings a side.
        half = 10 * max(self.up, self.down)
        cutoff = 1.0 / max(self.up, self.down)
        self.taps = (
            np.ones(1)
            if self.identity
            else firwin(2 * half + 1, cutoff, window=("kaiser", 5.0)) * self.up
        )
        self.delay_seconds = 0.0 if self.identity else half / (src_rate * self.up)
        # Input kept from earlier chunks: enough for the filter, starting at a multiple
        # of `down`, so output indices of each block line up with the global ones.
        self._history = np.zeros(0, dtype=np.float64)
        self._history_start = 0  # global input index of _history[0]
        self._consumed = 0  # input samples seen
        self._emitted = 0  # output samples given out
        self._keep = -(-len(self.taps) // self.up) + self.down

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float64).reshape(-1)
        if self.identity:
            return chunk.astype(np.float32)
        block = np.concatenate((self._history, chunk))
        self._consumed += chunk.size
        # Outputs that depend only on input already here (causal convolution).
        final = (self._consumed - 1) * self.up // self.down + 1 if self._consumed else 0
        out = upfirdn(self.taps, block, self.up, self.down)
        first = self._history_start * self.up // self.down  # global index of out[0]
        new = out[self._emitted - first : final - first]
        self._emitted = final
        # Keep the tail the filter still needs, cut at a multiple of `down`.
        start = max(0, self._consumed - self._keep)
        start -= start % self.down
        self._history = block[start - self._history_start :]
        self._history_start = start
        return new.astype(np.float32)
