"""The baseline of `edge-audio bench`: the pipeline the usual course projects
write, measured with the same protocol as the device path. At every stride it
recomputes librosa's mel spectrogram of the whole window and runs the torch
model in eager mode (fp32, BatchNorm unfolded, as trained). The model is the
bundle's own architecture rebuilt from the zoo; its weights are freshly
initialised, which changes no cost. Run as a child of the bench:

    python -m export.bench_baseline {measure,first} BUNDLE --audio WAV ...
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edge_audio.bench import (
    BASELINE_SKIPPED,
    BenchConfig,
    _child_parser,
    loop_chunks,
    stage_report,
    stride_samples,
    time_calls,
)
from edge_audio.bundle import Bundle, load_bundle
from edge_audio.deciders import Decider
from edge_audio.source import CHUNK_FRAMES
from edge_audio.stream import StreamConfig
from edge_audio.windows import normalise


class BaselinePipeline:
    """librosa + torch eager, recomputing the whole window at every stride."""

    def __init__(self, bundle: Bundle) -> None:
        import librosa
        import torch

        from .zoo import ModelSpec, build_model

        torch.set_num_threads(1)
        self.torch, self.librosa = torch, librosa
        self.bundle = bundle
        self.frames, self.mels = bundle.input_shape[2:]
        model = bundle.manifest.model
        spec = ModelSpec(model["name"], model["size"], len(bundle.labels), (self.frames, self.mels))
        self.model = build_model(spec).eval()
        self.window = bundle.frontend.n_samples(self.frames)
        self.decider = Decider(bundle, StreamConfig.for_bundle(bundle))

    def features(self, audio: np.ndarray) -> np.ndarray:
        f = self.bundle.frontend
        mel = self.librosa.feature.melspectrogram(
            y=audio,
            sr=f.sample_rate,
            n_fft=f.n_fft,
            hop_length=f.hop_length,
            win_length=f.win_length,
            n_mels=f.n_mels,
            fmin=f.fmin,
            fmax=f.fmax,
            htk=f.mel_scale == "htk",
            norm="slaney" if f.mel_norm == "slaney" else None,
        )
        db = self.librosa.power_to_db(mel, ref=1.0, amin=f.log_floor, top_db=None).T
        out = np.full((self.frames, self.mels), db.min(), dtype=np.float32)
        out[: min(self.frames, len(db))] = db[: self.frames]
        return out

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        x = normalise(features[None], self.bundle.dynamic_range, self.bundle.normalisation)
        with self.torch.inference_mode():
            logits = self.model(self.torch.from_numpy(x[:, None]))
            return self.torch.softmax(logits, dim=-1)[0].numpy()

    def decide(self, probs: np.ndarray, end: float) -> object:
        return self.decider.decide(probs, max(end - self.bundle.window_seconds, 0.0), end)


def measure(bundle_dir: Path, audio_path: Path, config: BenchConfig) -> dict:
    from edge_audio.audio import read_wav

    bundle = load_bundle(bundle_dir)
    pipeline = BaselinePipeline(bundle)
    samples, rate = read_wav(audio_path)
    stride = stride_samples(bundle)
    starts = list(range(0, samples.size - pipeline.window + 1, stride))
    clips = [samples[s : s + pipeline.window] for s in starts]
    frontend = time_calls(
        lambda i: pipeline.features(clips[i % len(clips)]), config.runs, config.warmup
    )
    features = [pipeline.features(c) for c in clips]
    inference = time_calls(
        lambda i: pipeline.probabilities(features[i % len(features)]), config.runs, config.warmup
    )
    probs = [pipeline.probabilities(f) for f in features[:50]]
    decision = time_calls(
        lambda i: pipeline.decide(probs[i % len(probs)], 1.0 + i), config.runs, config.warmup
    )

    # The whole loop: a sample ring, the whole window recomputed at every stride.
    ring = np.zeros(pipeline.window, dtype=np.float32)
    pending, windows, fed = 0, 0, 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for chunk in loop_chunks(samples, config.loop_seconds, rate, CHUNK_FRAMES):
        ring = np.concatenate((ring[chunk.size :], chunk))
        pending += chunk.size
        fed += chunk.size
        while pending >= stride:
            pending -= stride
            windows += 1
            pipeline.decide(pipeline.probabilities(pipeline.features(ring)), fed / rate)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    runtime = f"librosa + torch {pipeline.torch.__version__} eager"
    return stage_report((frontend, inference, decision), (wall, cpu), config, windows, runtime)


def first(bundle_dir: Path, audio_path: Path) -> None:
    from edge_audio.audio import read_wav

    bundle = load_bundle(bundle_dir)
    pipeline = BaselinePipeline(bundle)
    samples, _ = read_wav(audio_path)
    pipeline.decide(pipeline.probabilities(pipeline.features(samples[: pipeline.window])), 1.0)


def main(argv: Sequence[str] | None = None) -> None:
    args = _child_parser().parse_args(argv)
    try:
        import librosa  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        print(f"baseline needs the train and dev extras ({exc.name} is missing)", file=sys.stderr)
        sys.exit(BASELINE_SKIPPED)
    if args.mode == "first":
        first(args.bundle, args.audio)
        return
    config = BenchConfig(args.runs, args.warmup, args.loop_seconds, threads=args.threads)
    print(json.dumps(measure(args.bundle, args.audio, config)))


if __name__ == "__main__":
    main()
