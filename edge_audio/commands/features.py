"""`edge-audio features FILE`: the device frontend's log-mel of one file, drawn."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ..audio import load_audio, resample
from ..errors import ConfigError
from ..frontend import FrontendConfig, LogMel
from .runner import SubParsers

_SHADES = " .:-=+*#%@"


def _frontend_config(args: argparse.Namespace) -> FrontendConfig:
    if args.config:
        try:
            text = Path(args.config).read_text()
        except OSError as exc:
            raise ConfigError(
                f"{args.config}: cannot read frontend config: {exc.strerror}"
            ) from None
        return FrontendConfig.from_json(text)
    return FrontendConfig(sample_rate=args.sample_rate, n_mels=args.n_mels)


def ascii_spectrogram(logmel: np.ndarray, width: int = 72, height: int = 12) -> str:
    """A log-mel [frames, mels] drawn in characters: time runs right, pitch up."""
    frames, mels = logmel.shape
    if frames == 0:
        return "(no frames)"
    cols = np.array_split(np.arange(frames), min(width, frames))
    rows = np.array_split(np.arange(mels), min(height, mels))
    # Max over time keeps short sounds visible; mean over bands keeps rows smooth.
    grid = np.array([[logmel[np.ix_(c, r)].mean(axis=1).max() for c in cols] for r in rows])
    top = grid.max()
    levels = np.clip((grid - (top - 60.0)) / 60.0, 0.0, 1.0)  # 60 dB of range
    chars = np.array(list(_SHADES))[np.round(levels * (len(_SHADES) - 1)).astype(int)]
    return "\n".join("|" + "".join(row) + "|" for row in chars[::-1])


def run(args: argparse.Namespace) -> int:
    config = _frontend_config(args)
    # Read at the file's own rate first: that is the rate to report, and the
    # frontend's is what it is resampled to.
    native, file_rate = load_audio(args.file, allow_silent=True)
    rate = config.sample_rate
    samples = resample(native, file_rate, rate) if file_rate != rate else native
    logmel = LogMel(config)(samples)
    if args.save:
        np.save(args.save, logmel)
    stats = {
        "file": str(args.file),
        "duration_s": round(native.size / file_rate, 3),
        "sample_rate": file_rate,
        "frontend_rate": rate,
        "frames": int(logmel.shape[0]),
        "n_mels": int(logmel.shape[1]),
        "min_db": round(float(logmel.min()), 2) if logmel.size else None,
        "max_db": round(float(logmel.max()), 2) if logmel.size else None,
        "mean_db": round(float(logmel.mean()), 2) if logmel.size else None,
        "frontend": config.to_dict(),
    }
    if args.json:
        print(json.dumps(stats))
        return 0
    resampled = f", resampled to {rate} Hz" if file_rate != rate else ""
    print(
        f"{args.file}: {stats['duration_s']} s at {file_rate} Hz{resampled} -> "
        f"{stats['frames']} frames x {stats['n_mels']} mel bands "
        f"(hop {1000 * config.hop_length / rate:g} ms)"
    )
    if logmel.size:
        print(
            f"log-mel range {stats['min_db']} .. {stats['max_db']} dB, mean {stats['mean_db']} dB"
        )
        print(ascii_spectrogram(logmel))
    if args.save:
        print(f"saved {args.save}")
    return 0


def add_parser(sub: SubParsers, name: str) -> argparse.ArgumentParser:
    p = sub.add_parser(
        name,
        help="compute the log-mel features of an audio file",
        description="Compute log-mel features with the device frontend and draw them.",
        epilog="example: edge-audio features demo/digits.wav --n-mels 40",
    )
    p.add_argument("file", type=Path, help="audio file (WAV; FLAC/OGG/MP3 with soundfile)")
    p.add_argument("--config", help="frontend config JSON (e.g. from a model bundle)")
    p.add_argument("--sample-rate", type=int, default=16000, help="model rate (default 16000)")
    p.add_argument("--n-mels", type=int, default=40, help="mel bands (default 40)")
    p.add_argument("--save", type=Path, help="also save the [frames, mels] array as .npy")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)
    return p
