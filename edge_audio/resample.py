"""Streaming rational resampling: chunks in, chunks out, any chunk size.

The filter is resample_poly's (a Kaiser-windowed sinc, beta 5, ten zero
crossings a side), applied causally as a polyphase filter in NumPy: the output
equals scipy's upfirdn over the whole signal, i.e. resample_poly's output delayed
by half the filter, which the stream reports as `delay_seconds`. NumPy only:
importing scipy.signal would cost the device about 75 MB of memory.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np


def lowpass_taps(numtaps: int, cutoff: float, beta: float = 5.0) -> np.ndarray:
    """Kaiser-windowed sinc low-pass, unit gain at DC (scipy's firwin, in NumPy).
    `cutoff` is a fraction of the Nyquist frequency."""
    n = np.arange(numtaps) - (numtaps - 1) / 2
    taps = cutoff * np.sinc(cutoff * n) * np.kaiser(numtaps, beta)
    return np.asarray(taps / taps.sum())


class StreamingResampler:
    def __init__(self, src_rate: int, dst_rate: int) -> None:
        if src_rate <= 0 or dst_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
        ratio = Fraction(dst_rate, src_rate)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down == 1
        half = 10 * max(self.up, self.down)
        self.taps = (
            np.ones(1)
            if self.identity
            else lowpass_taps(2 * half + 1, 1.0 / max(self.up, self.down)) * self.up
        )
        self.delay_seconds = 0.0 if self.identity else half / (src_rate * self.up)
        # Polyphase: output k uses phase (k*down) % up, i.e. taps phase, phase+up, ...
        self.width = -(-len(self.taps) // self.up)
        padded = np.zeros(self.width * self.up)
        padded[: len(self.taps)] = self.taps
        self.phases = padded.reshape(self.width, self.up).T  # [phase, tap]
        # Input history, with zeros standing for the time before the stream began.
        self._buffer = np.zeros(self.width)
        self._buffer_start = -self.width  # global input index of _buffer[0]
        self._consumed = 0
        self._emitted = 0

    def process(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float64).reshape(-1)
        if self.identity:
            return chunk.astype(np.float32)
        self._buffer = np.concatenate((self._buffer, chunk))
        self._consumed += chunk.size
        # Outputs whose newest input sample has arrived (a causal filter).
        final = (self._consumed * self.up + self.down - 1) // self.down
        k = np.arange(self._emitted, final)
        self._emitted = final
        base = k * self.down // self.up
        index = (base - self._buffer_start)[:, None] - np.arange(self.width)[None, :]
        out = np.einsum("nm,nm->n", self._buffer[index], self.phases[k * self.down % self.up])
        # Keep what the next outputs still need.
        keep_from = final * self.down // self.up - self.width + 1
        self._buffer = self._buffer[keep_from - self._buffer_start :]
        self._buffer_start = keep_from
        return np.asarray(out, dtype=np.float32)
