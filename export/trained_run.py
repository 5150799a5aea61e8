"""A training run read back for export: its config, its model in eval mode with
BatchNorm folded, the clips it trained on and the ones it never heard."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.datasets import scan
from edge_audio.digest import TrainingDigest
from edge_audio.errors import DatasetError, EdgeAudioError
from edge_audio.frontend import FrontendConfig
from edge_audio.windows import WindowPlan, normalise

from .data import (
    ClipSet,
    FeatureCache,
    background_clips,
    calibration_windows,
    load_clips,
)
from .run_config import RunConfig, RunConfigError

# A final fit holds nothing out: int8 is checked against fp32 on this many of its clips.
FINAL_FIT_VERIFY_CLIPS = 600


class QuantizeError(EdgeAudioError):
    """Export or verification failed; the message says which artefact and why."""


@dataclass
class Run:
    root: Path
    config: RunConfig
    model: Any  # torch.nn.Module, eval mode, BatchNorm folded
    plan: WindowPlan
    frontend: FrontendConfig
    labels: list[str]


def load_run(root: Path) -> Run:
    import torch

    from .zoo import ModelSpec, build_model

    config_path, checkpoint = root / "config.json", root / "checkpoint.pt"
    for path in (config_path, checkpoint):
        if not path.is_file():
            raise QuantizeError(f"{root}: no {path.name} (is this a training run directory?)")
    try:
        config = RunConfig.from_dict(json.loads(config_path.read_text()))
    except json.JSONDecodeError as exc:
        raise QuantizeError(f"{config_path}: not valid JSON ({exc.msg})") from None
    except RunConfigError as exc:
        raise QuantizeError(f"{root}: {exc}") from None
    spec = ModelSpec(
        config.model.name, config.model.size, len(config.labels), config.model.input_shape
    )
    model = build_model(spec)
    model.dynamic_range = config.model.dynamic_range  # type: ignore[assignment]  # run_model reads it
    model.normalisation = config.model.normalisation  # type: ignore[assignment]
    model.load_state_dict(torch.load(checkpoint, weights_only=True))
    model.eval()
    prepare_for_export(model)
    window = config.window
    plan = WindowPlan.for_frontend(window.frames, window.mode, window.hop_frames, config.frontend)
    return Run(root, config, model, plan, config.frontend, list(config.labels))


def prepare_for_export(model: Any) -> None:
    """The inference graph the converters see: BatchNorm folded, dropout gone."""
    fold_batchnorm(model)
    strip_dropout(model)


def strip_dropout(model: Any) -> None:
    """Replace every Dropout with Identity. In eval mode dropout computes nothing,
    but torch.export keeps it as an op, and litert-torch then quantises the
    following Linear's bias with the scale observed after the dropout while the
    int8 graph feeds it the scale before the mean pooling: the bias came out 11x
    too large, and a digit detector's int8 TFLite fell from 90% to 58% (the
    fsdd-digits shipped before it lost 3.8 points to it, recovered only by QAT)."""
    from torch import nn

    for module in model.modules():
        for name, child in module.named_children():
            if isinstance(child, nn.Dropout):
                setattr(module, name, nn.Identity())


def fold_batchnorm(model: Any) -> None:
    """Fold every Conv2d -> BatchNorm2d pair: the exported graphs then hold only
    Conv, ReLU, pooling and Linear, and int8 scales cover the folded weights."""
    import torch
    from torch import nn

    for module in model.modules():
        children = list(module.named_children())
        for (_, conv), (bn_name, bn) in itertools.pairwise(children):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                assert bn.running_var is not None and bn.running_mean is not None
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                with torch.no_grad():
                    conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
                    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
                setattr(module, bn_name, nn.Identity())


@dataclass
class TrainingData:
    clips: ClipSet
    members: list[int]  # training clips (real and background)

    def digest(self) -> TrainingDigest:
        """The dataset files the final model trained on (generated background
        clips are not files): `edge-audio evaluate` warns when it scores them."""
        sources = {self.clips.clips[i].source for i in self.members}
        return TrainingDigest.of_files(Path(s) for s in sorted(sources) if Path(s).is_file())


@dataclass
class HeldOut:
    windows: np.ndarray  # [n_windows, frames, mels]
    clip_of_window: np.ndarray  # [n_windows] clip index
    truth: np.ndarray  # [n_clips] label index


def unheard_groups(config: RunConfig) -> set[str]:
    """The groups a run's final model never trained on: its test groups, and its
    validation groups unless it was refit on them (a final fit has neither)."""
    split = config.split
    if split is None:
        raise QuantizeError("the run's config.json has no split (was its training finished?)")
    unheard = set(split.test_groups)
    if not config.training.get("refit"):
        unheard |= set(split.validation_groups)
    return unheard


def load_data(
    run: Run, data_root: Path | None, cache_dir: Path | None, calibration: int, seed: int
) -> tuple[np.ndarray, HeldOut, TrainingData]:
    """Calibration windows from the groups the model trained on (spread over every
    class) and the clips to verify on: the held-out test clips of the run's split,
    or for a final fit on every group (nothing held out) a sample of its clips."""
    dataset = run.config.dataset
    root = data_root or Path(dataset.root)
    if not root.is_dir():
        raise DatasetError(f"{root}: the run's dataset is not here; pass --data")
    index = scan(
        root,
        dataset.layout,
        folds=None if dataset.folds is None else list(dataset.folds),
        groups=dataset.groups_option,
    )
    cache = FeatureCache(run.frontend, cache_dir)
    clips = load_clips(index, cache, progress=False)
    clips = ClipSet(clips.clips, run.labels, clips.skipped)
    test_groups = run.config.test_groups
    unheard = unheard_groups(run.config)
    train = [i for i, c in enumerate(clips.clips) if c.group not in unheard]
    test = [i for i, c in enumerate(clips.clips) if c.group in test_groups]
    if not test_groups:  # a final fit: check fidelity on a sample of its clips
        rng = np.random.default_rng(seed + 11)
        test = sorted(rng.permutation(len(clips.clips))[:FINAL_FIT_VERIFY_CLIPS].tolist())
    if run.config.background_class:
        # Background clips join calibration only: the held-out figures, like the
        # training report's, are about the dataset's own clips.
        seconds = run.config.window.seconds
        extra = background_clips(cache, 30, seconds, seed + 101, "bg-calibration")
        train.extend(range(len(clips.clips), len(clips.clips) + len(extra)))
        clips.clips.extend(extra)
    if not test:
        raise DatasetError(f"no held-out clips of groups {list(test_groups)} in {root}")
    calib = calibration_windows(clips, train, run.plan, calibration, seed)
    label_index = {label: i for i, label in enumerate(run.labels)}
    windows, owners = [], []
    for n, i in enumerate(test):
        w = run.plan.clip_windows(clips.clips[i].features)
        windows.append(w)
        owners.extend([n] * len(w))
    truth = np.array([label_index[clips.clips[i].label] for i in test])
    # Calibration data is what the network sees: level-normalised windows.
    calib = normalise(calib, run.model.dynamic_range, run.config.model.normalisation)
    held_out = HeldOut(np.concatenate(windows), np.array(owners), truth)
    return calib.astype(np.float32), held_out, TrainingData(clips, train)
