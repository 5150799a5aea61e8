"""Audio file I/O: WAV with NumPy and the standard library alone, other formats
through soundfile when it is installed, and exact rational resampling.

Every function returns mono float32 samples in [-1, 1]. Bad files raise
AudioFileError naming the file and the reason; a declared size is never
trusted for an allocation before it is checked against the real file size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import AudioFileError

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE

_PCM_BITS = (8, 16, 24, 32)
_FLOAT_BITS = (32, 64)
# First bytes of the compressed formats that soundfile can read for us.
_OTHER_FORMATS = {
    b"fLaC": "FLAC",
    b"OggS": "Ogg",
    b"ID3": "MP3",
    b"\xff\xfb": "MP3",
    b"\xff\xf3": "MP3",
    b"\xff\xf2": "MP3",
    b"RF64": "RF64",
    b"FORM": "AIFF",
}


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says, checked against the file itself."""

    path: Path
    format_tag: int  # WAVE_FORMAT_PCM or WAVE_FORMAT_IEEE_FLOAT (extensible resolved)
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    data_offset: int
    data_bytes: int

    @property
    def n_frames(self) -> int:
        return self.data_bytes // self.block_align

    @property
    def duration(self) -> float:
        return self.n_frames / self.sample_rate


def wav_info(path: str | Path) -> WavInfo:
    """Parse and validate a WAV header without reading the samples."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            return _parse_header(path, f, size)
    except OSError as exc:
        raise AudioFileError(path, f"cannot open: {exc.strerror or exc}") from None


def _parse_header(path: Path, f: BinaryIO, file_size: int) -> WavInfo:
    if file_size == 0:
        raise AudioFileError(path, "empty file")
    head = f.read(12)
    if len(head) < 12:
        raise AudioFileError(path, f"truncated: {file_size} bytes is too short for a RIFF header")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise AudioFileError(path, f"not a RIFF/WAVE file (starts with {head[:4]!r})")

    fmt: bytes | None = None
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        chunk_id, chunk_size = struct.unpack("<4sI", f.read(8))
        body = pos + 8
        remaining = file_size - body
        if chunk_id == b"fmt ":
            if chunk_size < 16:
                raise AudioFileError(path, f"fmt chunk is {chunk_size} bytes, needs at least 16")
            if chunk_size > remaining:
                raise AudioFileError(path, "truncated: the fmt chunk runs past the end of the file")
            fmt = f.read(chunk_size)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFileError(path, "data chunk comes before any fmt chunk")
            if chunk_size > remaining:
                raise AudioFileError(
                    path,
                    f"truncated: data chunk declares {chunk_size} bytes "
                    f"but only {remaining} remain in the file",
                )
            return _make_info(path, fmt, body, chunk_size)
        # Chunks are padded to an even size (RIFF rule); a pad byte may be missing at EOF.
        pos = body + chunk_size + (chunk_size & 1)
    if fmt is None:
        raise AudioFileError(path, "no fmt chunk")
    raise AudioFileError(path, "no data chunk")


def _make_info(path: Path, fmt: bytes, data_offset: int, data_bytes: int) -> WavInfo:
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(fmt) < 26:
            raise AudioFileError(path, "WAVE_FORMAT_EXTENSIBLE fmt chunk is too short")
        tag = struct.unpack("<H", fmt[24:26])[0]  # first two bytes of the SubFormat GUID
    if channels == 0:
        raise AudioFileError(path, "header says zero channels")
    if rate == 0:
        raise AudioFileError(path, "header says a sample rate of 0 Hz")
    if tag == WAVE_FORMAT_PCM:
        if bits not in _PCM_BITS:
            raise AudioFileError(
                path, f"unsupported PCM bit depth {bits} (supported: 8, 16, 24, 32)"
            )
    elif tag == WAVE_FORMAT_IEEE_FLOAT:
        if bits not in _FLOAT_BITS:
            raise AudioFileError(path, f"unsupported float bit depth {bits} (supported: 32, 64)")
    else:
        raise AudioFileError(
            path, f"unsupported WAV encoding 0x{tag:04x} (only PCM and IEEE float are read)"
        )
    if block_align != channels * bits // 8:
        raise AudioFileError(
            path, f"block align {block_align} does not match {channels} channels of {bits} bits"
        )
    if data_bytes % block_align:
        raise AudioFileError(
            path, f"data chunk size {data_bytes} is not a whole number of {block_align}-byte frames"
        )
    return WavInfo(path, tag, channels, rate, bits, block_align, data_offset, data_bytes)


def _decode(raw: bytes, info: WavInfo) -> np.ndarray:
    """Interleaved bytes -> float32 array [frames, channels] in [-1, 1]."""
    bits = info.bits_per_sample
    if info.format_tag == WAVE_FORMAT_IEEE_FLOAT:
        x = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
        bad = int(np.count_nonzero(~np.isfinite(x)))
        if bad:
            raise AudioFileError(info.path, f"{bad} float samples are NaN or infinite")
        x = np.clip(x, -1.0, 1.0)
    elif bits == 8:  # 8-bit WAV is unsigned with 128 as zero
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif bits == 16:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    elif bits == 24:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        wide = np.zeros((b.shape[0], 4), dtype=np.uint8)
        wide[:, 1:] = b  # value << 8, then an arithmetic shift restores the sign
        x = (wide.view("<i4").ravel() >> 8).astype(np.float32) / 8388608.0
    else:
        x = (np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2147483648.0).astype(np.float32)
    return x.reshape(-1, info.channels)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a WAV file -> (mono float32 samples, sample rate). No checks on content."""
    info = wav_info(path)
    try:
        with info.path.open("rb") as f:
            f.seek(info.data_offset)
            raw = f.read(info.data_bytes)
    except OSError as exc:
        raise AudioFileError(info.path, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) != info.data_bytes:  # the file shrank under us
        raise AudioFileError(info.path, "truncated while reading the data chunk")
    return to_mono(_decode(raw, info)), info.sample_rate


def iter_wav(info: WavInfo, frames: int) -> Iterator[np.ndarray]:
    """Mono float32 chunks of `frames` samples, read from disk as they are needed:
    an hour-long recording is never held in memory at once."""
    step = frames * info.block_align
    try:
        with info.path.open("rb") as f:
            f.seek(info.data_offset)
            for offset in range(0, info.data_bytes, step):
                want = min(step, info.data_bytes - offset)
                raw = f.read(want)
                if len(raw) != want:  # the file shrank under us
                    raise AudioFileError(info.path, "truncated while reading the data chunk")
                yield to_mono(_decode(raw, info))
    except OSError as exc:
        raise AudioFileError(info.path, f"cannot read: {exc.strerror or exc}") from None


def to_mono(frames: np.ndarray) -> np.ndarray:
    """[frames, channels] -> [frames] by averaging channels, as float32."""
    if frames.ndim == 1:
        return frames.astype(np.float32, copy=False)
    if frames.shape[1] == 1:
        return np.ascontiguousarray(frames[:, 0], dtype=np.float32)
    return np.asarray(frames.mean(axis=1, dtype=np.float32))


def _read_with_soundfile(path: Path, kind: str) -> tuple[np.ndarray, int]:
    try:
        import soundfile  # optional: only for formats other than WAV
    except ImportError:
        raise AudioFileError(
            path,
            f"{kind} audio needs the soundfile package: "
            "pip install 'edge-audio[formats]' (or pip install soundfile)",
        ) from None
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own RuntimeError subclasses
        raise AudioFileError(path, f"soundfile could not read it: {exc}") from None
    if not np.isfinite(data).all():
        raise AudioFileError(path, "samples are NaN or infinite")
    return to_mono(np.clip(data, -1.0, 1.0)), int(rate)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling by the exact rational ratio dst/src (e.g. 160/441)."""
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    if src_rate == dst_rate:
        return samples.astype(np.float32, copy=False)
    from scipy.signal import resample_poly  # deferred: keeps `import edge_audio` light

    ratio = Fraction(dst_rate, src_rate)
    out = resample_poly(samples, ratio.numerator, ratio.denominator)
    return np.asarray(out, dtype=np.float32)


def load_audio(
    path: str | Path, sample_rate: int | None = None, *, allow_silent: bool = False
) -> tuple[np.ndarray, int]:
    """Read any supported file -> (mono float32 samples, rate), resampled when
    `sample_rate` is given. Zero-length audio is an error, and so is digital
    silence unless `allow_silent` (a silent training clip is almost always a
    broken file)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise AudioFileError(path, f"cannot open: {exc.strerror or exc}") from None
    other = next((name for sig, name in _OTHER_FORMATS.items() if magic.startswith(sig)), None)
    if magic == b"RIFF" or len(magic) < 4:  # short files get read_wav's precise error
        samples, rate = read_wav(path)
    elif other is not None:
        samples, rate = _read_with_soundfile(path, other)
    else:
        samples, rate = _read_unknown(path, magic)
    if samples.size == 0:
        raise AudioFileError(path, "no samples (zero-length audio)")
    if not allow_silent and not np.any(samples):
        raise AudioFileError(path, "digital silence (every sample is zero)")
    if sample_rate is not None and sample_rate != rate:
        samples, rate = resample(samples, rate, sample_rate), sample_rate
    return samples, rate


def _read_unknown(path: Path, magic: bytes) -> tuple[np.ndarray, int]:
    """No known signature. A .wav name, or no soundfile, gets read_wav's precise
    'not a RIFF/WAVE file' error; otherwise soundfile may still know the format."""
    if path.suffix.lower() in (".wav", ".wave"):
        return read_wav(path)
    try:
        import soundfile  # noqa: F401
    except ImportError:
        return read_wav(path)
    return _read_with_soundfile(path, path.suffix.lstrip(".").upper() or f"{magic!r}")


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int, bits: int = 16) -> None:
    """Write mono or [frames, channels] samples in [-1, 1] as PCM (8/16/24/32 bit)
    or, with bits=-32 / -64, as IEEE float. Used by tests and the demo maker."""
    x = np.asarray(samples, dtype=np.float64)
    frames = x.reshape(-1, 1) if x.ndim == 1 else x
    channels = frames.shape[1]
    if bits in (-32, -64):
        tag, width = WAVE_FORMAT_IEEE_FLOAT, -bits
        raw = frames.astype("<f4" if width == 32 else "<f8").tobytes()
    elif bits in _PCM_BITS:
        tag, width = WAVE_FORMAT_PCM, bits
        clipped = np.clip(frames, -1.0, 1.0)
        if bits == 8:
            raw = np.round(clipped * 127 + 128).astype(np.uint8).tobytes()
        else:
            scale = 2 ** (bits - 1) - 1
            ints = np.round(clipped * scale).astype("<i4")
            raw = ints.tobytes() if bits == 32 else _pack_narrow(ints, bits)
    else:
        raise ValueError(f"bits must be 8, 16, 24, 32, -32 or -64, got {bits}")
    block = channels * width // 8
    fmt = struct.pack("<HHIIHH", tag, channels, sample_rate, sample_rate * block, block, width)
    pad = b"\x00" if len(raw) & 1 else b""
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    body += b"data" + struct.pack("<I", len(raw)) + raw + pad
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def _pack_narrow(ints: np.ndarray, bits: int) -> bytes:
    """Little-endian int32 -> the low `bits`/8 bytes of each sample."""
    width = bits // 8
    return ints.reshape(-1, 1).view(np.uint8).reshape(-1, 4)[:, :width].tobytes()
