"""Byte-level WAV builders for tests: valid files of every encoding and a corpus
of malformed ones. Nothing here reads audio from outside the repository."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

KSDATAFORMAT_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def fmt_chunk(
    tag: int,
    channels: int,
    rate: int,
    bits: int,
    *,
    extensible: bool = False,
    block_align: int | None = None,
) -> bytes:
    block = channels * bits // 8 if block_align is None else block_align
    head = (0xFFFE if extensible else tag, channels, rate, rate * block, block, bits)
    body = struct.pack("<HHIIHH", *head)
    if extensible:
        body += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + KSDATAFORMAT_TAIL
    return chunk(b"fmt ", body)


def chunk(chunk_id: bytes, body: bytes, declared: int | None = None, pad: bool = True) -> bytes:
    size = len(body) if declared is None else declared
    tail = b"\x00" if pad and len(body) % 2 else b""
    return chunk_id + struct.pack("<I", size) + body + tail


def riff(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def pcm_bytes(x: np.ndarray, bits: int) -> bytes:
    """Float samples [frames, channels] -> interleaved PCM or float bytes."""
    x = np.asarray(x, dtype=np.float64)
    if bits == 8:
        return np.round(x * 127 + 128).astype(np.uint8).tobytes()
    if bits in (-32, -64):
        return x.astype("<f4" if bits == -32 else "<f8").tobytes()
    ints = np.round(x * (2 ** (bits - 1) - 1)).astype("<i4")
    if bits == 32:
        return ints.tobytes()
    return ints.reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, : bits // 8].tobytes()


def tone(n: int = 1600, rate: int = 16000, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.float32)


def good_wav(channels: int = 1, bits: int = 16) -> bytes:
    x = np.repeat(tone()[:, None], channels, axis=1)
    tag = 3 if bits < 0 else 1
    return riff(fmt_chunk(tag, channels, 16000, abs(bits)), chunk(b"data", pcm_bytes(x, bits)))


def malformed_corpus() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, a fragment the error message must contain)."""
    fmt16 = fmt_chunk(1, 1, 16000, 16)
    data = chunk(b"data", pcm_bytes(tone()[:, None], 16))
    nan = np.array([[0.1], [np.nan], [0.2]])
    inf = np.array([[0.1], [np.inf], [0.2]])
    return {
        "empty": (b"", "empty file"),
        "short_header": (b"RIFF\x10\x00", "truncated"),
        "text_file": (b"hello, this is not audio at all\n", "not a RIFF/WAVE"),
        "riff_not_wave": (b"RIFF\x04\x00\x00\x00AVI " + fmt16, "not a RIFF/WAVE"),
        "no_fmt": (riff(data), "before any fmt"),
        "no_data": (riff(fmt16), "no data chunk"),
        "header_only": (riff(), "no fmt chunk"),
        "zero_channels": (riff(fmt_chunk(1, 0, 16000, 16, block_align=2), data), "zero channels"),
        "zero_rate": (riff(fmt_chunk(1, 1, 0, 16), data), "0 Hz"),
        "fmt_too_short": (riff(chunk(b"fmt ", b"\x01\x00\x01\x00"), data), "at least 16"),
        "fmt_past_eof": (b"RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", "fmt chunk runs"),
        "odd_data_size": (riff(fmt16, chunk(b"data", b"\x00\x01\x02")), "whole number"),
        "huge_declared_size": (
            riff(fmt16, chunk(b"data", b"\x00\x00" * 8, declared=2**32 - 2)),
            "truncated",
        ),
        "truncated_data": (riff(fmt16, data)[:-100], "truncated"),
        "bad_block_align": (riff(fmt_chunk(1, 2, 16000, 16, block_align=3), data), "block align"),
        "bits_12": (riff(fmt_chunk(1, 1, 16000, 12, block_align=2), data), "bit depth 12"),
        "float_16": (riff(fmt_chunk(3, 1, 16000, 16), data), "float bit depth 16"),
        "mp3_in_wav": (riff(fmt_chunk(0x55, 1, 16000, 16), data), "0x0055"),
        "nan_samples": (
            riff(fmt_chunk(3, 1, 16000, 32), chunk(b"data", pcm_bytes(nan, -32))),
            "NaN or infinite",
        ),
        "inf_samples": (
            riff(fmt_chunk(3, 1, 16000, 64), chunk(b"data", pcm_bytes(inf, -64))),
            "NaN or infinite",
        ),
        "zero_length": (riff(fmt16, chunk(b"data", b"")), "zero-length"),
        "silent": (riff(fmt16, chunk(b"data", b"\x00\x00" * 800)), "silence"),
    }


def write_corpus(folder: Path) -> dict[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (blob, fragment) in malformed_corpus().items():
        path = folder / f"{name}.wav"
        path.write_bytes(blob)
        out[path] = fragment
    return out
