"""`train --backbone`: learning on a pretrained network, in three uses.

1. A head on the frozen network (the default): every window of every clip is
   embedded once, the embeddings are cached beside the features, and a
   logistic regression (one Linear layer, L2-regularised, on standardised
   embeddings, the standardisation then folded into the layer) is fitted per
   fold in seconds; `--size mlp` fits a one-hidden-layer head instead. Spoken
   keywords also train on speaker copies (each clip warped as another voice).
2. `--fine-tune N|all`: the top N stages retrain too (export/finetune.py); the
   output of the frozen stages below them is what gets cached.
3. `--size tiny --teacher RUN_DIR`: a smaller network made of the first stages
   learns from the labels and from a trained run's cached outputs.

Folds are by group like every other model here. The run written is an ordinary
run directory: the checkpoint holds the whole network, so `quantize` exports,
quantises and verifies it like any zoo model, and the bundle runs on the device
through the same runtime.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edge_audio.datasets import describe_groups
from edge_audio.errors import ConfigError, DatasetError
from edge_audio.frontend import FrontendConfig
from edge_audio.metrics import classification_report

from . import checks
from .augment import REVERB_SHARE, AugmentConfig, augment_batch
from .data import (
    BACKGROUND,
    CALIBRATION_WINDOWS,
    Clip,
    ClipSet,
    FeatureCache,
    Split,
    WindowPlan,
    calibration_windows,
    group_split,
    mean_per_clip,
)
from .efficientat import SIZES as BACKBONE_SIZES
from .efficientat import TINY_STAGES
from .finetune import (
    BODY_LR,
    FINE_TUNE_EPOCHS,
    MIXUP_ALPHA,
    STUDENT_BODY_LR,
    STUDENT_EPOCHS,
    FineTuned,
    FineTuneSettings,
    fine_tune,
    int8_lower,
    lower_activations,
    parse_stages,
    planned_epochs,
)
from .fit import Log
from .folds import Fold, group_folds, plan_folds
from .heads import (
    FALLBACK_L2,
    HEAD_SIZES,
    L2_GRID,
    MLP_RECIPE,
    Head,
    L2Choice,
    choose_l2,
    fit_head,
    fit_mlp,
    hidden_units,
)
from .negatives import Negatives
from .presets import Preset
from .pretrained import BackboneSpec, Located, classifier_on, load_network, locate
from .room import db_per_unit, room_method
from .run_config import ModelRecord, RunConfig, RunWindow
from .runs import FoldResult, merge_checks, run_baseline, write_cv_summary, write_run

# Window per layout when a backbone listens: the networks were trained on long
# clips, and an environmental sound is recognised better over a whole ESC-50 clip.
BACKBONE_WINDOWS = {"esc50": (5.0, 2.5)}
TINY_FROZEN = 7  # the tiny student trains its stages from this one up, unless --fine-tune says
EMBED_BATCH = 16


class NetworkCache:
    """Per-clip window outputs of a frozen network part, keyed by the backbone, the
    window plan, what is computed and the clip's features, stored beside the
    feature cache: [windows, D] embeddings, or [windows, C, F, T] activations."""

    def __init__(
        self,
        cache: FeatureCache,
        located: Located,
        plan: WindowPlan,
        compute: Callable[[np.ndarray], np.ndarray],
        kind: str = "embeddings",
        variant: str = "",
        dtype: Any = np.float32,
    ) -> None:
        """`kind` names the folder and the progress bar; `variant` tells apart
        outputs of one kind (the cut, the teacher's checkpoint)."""
        tag = f"{located.spec.sha256}|{plan}" + (f"|{variant}" if variant else "")
        self.dir = cache.dir / f"{kind}-{hashlib.sha256(tag.encode()).hexdigest()[:16]}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.plan = plan
        self.compute = compute
        self.kind = kind
        self.dtype = dtype

    def outputs(self, clips: ClipSet, progress: bool) -> list[np.ndarray]:
        iterator: Any = clips.clips
        if progress:
            from tqdm import tqdm

            iterator = tqdm(clips.clips, desc=self.kind, unit="clip", leave=False, disable=None)
        return [self._one(c.features) for c in iterator]

    def _one(self, features: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(np.ascontiguousarray(features).tobytes()).hexdigest()
        path = self.dir / f"{key}.npy"
        if path.is_file():
            return np.load(path).astype(np.float32)
        out = self.compute(self.plan.clip_windows(features))
        np.save(path, out.astype(self.dtype))
        return out.astype(np.float32)


def embed_windows(classifier: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The pooled embedding of windows [n, frames, mels], as the classifier's
    head sees it: [n, D]."""

    def compute(windows: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(windows[:, None]))
        with torch.inference_mode():
            parts = [
                classifier.embed(x[i : i + EMBED_BATCH]) for i in range(0, len(x), EMBED_BATCH)
            ]
        return torch.cat(parts).numpy().astype(np.float32)

    return compute


def _windows(outputs: Sequence[np.ndarray], members: Sequence[int], labels: np.ndarray):
    """The windows of `members` stacked, their labels, and which member each came from."""
    x = np.concatenate([outputs[i] for i in members])
    y = np.concatenate([np.full(len(outputs[i]), labels[i]) for i in members])
    owner = np.concatenate([np.full(len(outputs[i]), n) for n, i in enumerate(members)])
    return x, y, owner


class Fitted(Protocol):
    """A fold's trained model over the cached outputs."""

    def window_probabilities(self, members: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Per-window class probabilities of `members`, and the member of each window."""
        ...

    def checkpoint(self) -> dict[str, Any]:
        """The whole network's state_dict: pretrained body and what was trained."""
        ...


@dataclass
class BackboneData:
    """What every fold of a backbone run trains on."""

    clips: ClipSet
    network: Any
    spec: BackboneSpec
    frames: int  # the model window
    segments: bool  # long clips are also scored window by window (the preset's mode)
    embeddings: list[np.ndarray]  # [windows, D] per clip, for the head alone
    copies: Copies | None  # clips heard in rooms (--negatives), said by other voices
    activations: list[np.ndarray] | None  # [windows, C, F, T] below the cut, when fine-tuning
    cut: int  # first stage that trains (len(features): the head only)
    stages: int | None  # the student keeps the tagger's first `stages` (--size tiny)
    l2: float | None  # the linear head's penalty; None: chosen per fit (--head-l2 auto)
    tune: FineTuneSettings | None
    seed: int
    progress: bool
    hidden: int = 0  # an MLP head's hidden units (--size mlp); 0: linear
    int8: Int8Lower | None = None  # --int8-aware: the stages also learn from int8 lower ones

    def fit(self, members: Sequence[int], teacher: list[np.ndarray] | None = None) -> Fitted:
        labels, n_classes = self.clips.label_ids(), len(self.clips.labels)
        if self.tune is None or self.activations is None:
            x, y = self.head_training(members)
            if self.hidden:
                return MlpProbe(self, fit_mlp(x, y, n_classes, self.hidden, self.seed))
            choice = self.head_l2(members)
            return Probe(self, fit_head(x, y, n_classes, choice.l2, self.seed), choice)
        acts, y, _ = _windows(self.activations, members, labels)
        soft = None if teacher is None else _windows(teacher, members, labels)[0]
        if self.int8 is not None:  # every window twice: as float and as int8 computes it
            acts = np.concatenate([acts, *self.int8.outputs(self.clips, members)])
            y = np.concatenate([y, y])
            soft = None if soft is None else np.concatenate([soft, soft])
        tuned = fine_tune(
            self.classifier(), self.cut, acts, y, self.tune, self.seed, self.progress, soft
        )
        return Tuned(self, tuned)

    def head_training(self, members: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """The embedded windows a head trains on: those of `members` and their copies."""
        labels = self.clips.label_ids()
        x, y, _ = _windows(self.embeddings, members, labels)
        if self.copies is not None:
            x2, y2 = self.copies.of(members, labels)
            x, y = np.concatenate([x, x2]), np.concatenate([y, y2])
        return x, y

    def head_l2(self, members: Sequence[int]) -> L2Choice:
        """The linear head's penalty: as given, or chosen by cross-validation over
        the groups of `members` (synthetic clips always train), scored as the run
        is: by clip, or by window for long clips."""
        if self.l2 is not None:
            return L2Choice(self.l2, "given", {})
        inner = inner_folds(self.clips, members, self.seed)
        if len(inner) < 2:
            return L2Choice(FALLBACK_L2, "fallback", {})
        n_classes = len(self.clips.labels)
        splits = []
        for held in inner:
            out = set(held)
            splits.append(([m for m in members if m not in out], held))
        trained = [self.head_training(train) for train, _ in splits]
        report = segment_report if self.segments else clip_report
        progress = None
        if self.progress:
            from tqdm import tqdm

            progress = tqdm(total=len(L2_GRID), desc="head L2", leave=False, disable=None)

        def score(l2: float) -> float:
            accuracy = []
            for (x, y), (_, held) in zip(trained, splits, strict=True):
                probe = Probe(self, fit_head(x, y, n_classes, l2, self.seed))
                accuracy.append(report(probe, held, self.clips)["accuracy"])
            if progress is not None:
                progress.update()
            return float(np.mean(accuracy))

        choice = choose_l2(score, len(inner))
        if progress is not None:
            progress.close()
        return choice

    def classifier(self) -> Any:
        """The network as trained from: pretrained stages, new layers seeded."""
        import torch

        torch.manual_seed(self.seed)
        network = copy.deepcopy(self.network)
        n_classes = len(self.clips.labels)
        return classifier_on(self.spec, network, n_classes, self.frames, self.stages, self.hidden)


@dataclass
class Int8Lower:
    """`--int8-aware`: the frozen stages' output as the int8 TFLite file computes
    it, for a fold's training clips, calibrated on their windows (never on a
    test clip) and cached per calibration set like the float activations."""

    cache: FeatureCache
    located: Located
    plan: WindowPlan
    network: Any
    cut: int
    seed: int
    progress: bool

    def outputs(self, clips: ClipSet, members: Sequence[int]) -> list[np.ndarray]:
        trained = ClipSet([clips.clips[i] for i in members], clips.labels)
        calibration = np.ascontiguousarray(
            calibration_windows(clips, members, self.plan, CALIBRATION_WINDOWS, self.seed),
            dtype=np.float32,
        )
        digest = hashlib.sha256(calibration.tobytes()).hexdigest()[:16]

        simulated = None

        def compute(batch: np.ndarray) -> np.ndarray:
            nonlocal simulated
            if simulated is None:  # built on the first clip not in the cache
                simulated = int8_lower(self.network, self.cut, calibration)
            return np.asarray(simulated(batch))

        kind, variant = "int8-activations", f"stages<{self.cut}|int8|{digest}"
        computed = NetworkCache(
            self.cache, self.located, self.plan, compute, kind, variant, np.float16
        )
        return computed.outputs(trained, self.progress)


def inner_folds(clips: ClipSet, members: Sequence[int], seed: int) -> list[list[int]]:
    """The real clips of `members` in folds by group (export/folds.py), for a choice
    made on the training side alone."""
    chosen = [clips.clips[i] for i in members]
    folds = group_folds(ClipSet(chosen, clips.labels), seed)
    return [
        [m for m, c in zip(members, chosen, strict=True) if not c.synthetic and c.group in f]
        for f in folds
    ]


@dataclass
class Probe:
    data: BackboneData
    head: Head
    choice: L2Choice | None = None  # how its penalty was come by

    def window_probabilities(self, members: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        x, _, owner = _windows(self.data.embeddings, members, self.data.clips.label_ids())
        return self.head.probabilities(x), owner

    def checkpoint(self) -> dict[str, Any]:
        import torch

        model = self.data.classifier()
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(self.head.weight))
            model.head.bias.copy_(torch.from_numpy(self.head.bias))
        return dict(model.state_dict())


@dataclass
class MlpProbe:
    data: BackboneData
    head: Any  # the trained torch head, standardisation folded in

    def window_probabilities(self, members: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        x, _, owner = _windows(self.data.embeddings, members, self.data.clips.label_ids())
        with torch.inference_mode():
            logits = self.head(torch.from_numpy(x))
        return torch.softmax(logits, dim=1).numpy(), owner

    def checkpoint(self) -> dict[str, Any]:
        model = self.data.classifier()
        model.head.load_state_dict(self.head.state_dict())
        return dict(model.state_dict())


@dataclass
class Tuned:
    data: BackboneData
    model: FineTuned

    def window_probabilities(self, members: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        assert self.data.activations is not None
        acts, _, owner = _windows(self.data.activations, members, self.data.clips.label_ids())
        return self.model.probabilities(acts), owner

    def checkpoint(self) -> dict[str, Any]:
        return dict(self.model.into(self.data.classifier(), self.data.cut).state_dict())


@dataclass
class Teachers:
    """`--teacher RUN_DIR`: per fold, the teacher run of the same fold when the
    directory has one (RUN_DIR/fold-NAME, written by `train --cv`), so no fold's
    test clips reach its student through the teacher; RUN_DIR itself otherwise."""

    root: Path
    cache: FeatureCache
    located: Located
    plan: WindowPlan
    clips: ClipSet
    progress: bool

    def for_fold(self, fold: Fold, log: Log) -> list[np.ndarray]:
        from .trained_run import load_run

        per_fold = self.root / f"fold-{fold.name}"
        run = load_run(per_fold if per_fold.is_dir() else self.root)
        if list(run.labels) != list(self.clips.labels):
            raise ConfigError(f"--teacher {run.root}: its labels differ from this dataset's")
        if run.plan.frames != self.plan.frames or run.frontend != self.located.spec.frontend:
            raise ConfigError(
                f"--teacher {run.root}: another frontend or window than the student's"
            )
        heard = set(fold.test_groups) - set(run.config.test_groups)
        if heard:
            log(
                f"  warning: teacher {run.root} trained on {describe_groups(sorted(heard))}, "
                f"fold {fold.name}'s test groups: this fold's estimate is optimistic"
            )
        digest = hashlib.sha256((run.root / "checkpoint.pt").read_bytes()).hexdigest()[:16]
        model = run.model

        def compute(windows: np.ndarray) -> np.ndarray:
            import torch

            with torch.inference_mode():
                return model(torch.from_numpy(np.ascontiguousarray(windows[:, None]))).numpy()

        cache = NetworkCache(
            self.cache, self.located, self.plan, compute, "teacher", f"teacher-{digest}"
        )
        return cache.outputs(self.clips, self.progress)


def clip_report(fitted: Fitted, members: Sequence[int], clips: ClipSet) -> dict[str, Any]:
    labels = clips.label_ids()
    if not members:
        return classification_report(np.array([], int), np.array([], int), clips.labels)
    probs, owner = fitted.window_probabilities(members)
    probs = mean_per_clip(probs, owner, len(members))
    return classification_report(labels[list(members)], probs.argmax(1), clips.labels)


def segment_report(fitted: Fitted, members: Sequence[int], clips: ClipSet) -> dict[str, Any]:
    """Each window on its own, as a stream is labelled segment by segment."""
    probs, owner = fitted.window_probabilities(members)
    truth = clips.label_ids()[np.asarray(members)[owner]]
    report = classification_report(truth, probs.argmax(1), clips.labels)
    return {k: report[k] for k in ("n", "accuracy", "macro_f1")}


def run_fold(
    data: BackboneData, fold: Fold, log: Log, teachers: Teachers | None = None
) -> FoldResult:
    start = time.time()
    clips = data.clips
    if fold.test_groups:
        split = group_split(clips, fold.test_groups, fold.validation_groups, data.seed)
        train = split.train + split.validation  # no early stopping: validation trains too
    else:
        split = Split(list(range(len(clips.clips))), [], [], [], [])
        train = split.train
    if not train:
        raise DatasetError(f"fold {fold.name} has no training clips")
    fitted = data.fit(train, teachers.for_fold(fold, log) if teachers else None)
    metrics = {
        "train": clip_report(fitted, train, clips),
        "validation": clip_report(fitted, [], clips),
        "test": clip_report(fitted, split.test, clips),
    }
    if data.segments and split.test:
        metrics["test_segments"] = segment_report(fitted, split.test, clips)
    choice = fitted.choice if isinstance(fitted, Probe) else None
    if choice is not None:
        metrics["head_l2"] = choice.record()
    baseline = run_baseline(clips, Split(train, [], split.test, [], [])) if split.test else {}
    seconds = time.time() - start
    if split.test:
        log(
            f"fold {fold.name} (test {describe_groups(fold.test_groups)}): "
            f"{len(train)} train clips, {len(split.test)} test; accuracy "
            f"{metrics['test']['accuracy']:.4f}, macro-F1 {metrics['test']['macro_f1']:.4f} "
            f"(baseline {baseline['accuracy']:.4f}) in {seconds:.1f} s"
        )
    if choice is not None and choice.how != "given":
        log(f"  fold {fold.name}: {choice.describe()}")
    found = checks.collect(
        checks.below_baseline(metrics["test"]["accuracy"], baseline["accuracy"], pretrained=True)
        if split.test
        else None,
        checks.underfitting(metrics["train"]["accuracy"]),
    )
    state = fitted.checkpoint()
    trained_on = Fold(fold.name, fold.test_groups, [])  # its validation group trained too
    return FoldResult(trained_on, state, [], 0, False, metrics, baseline, seconds, None, found)


OTHER_WORDS_PER_VOICE = 15  # espeak-ng words that are not classes, per synthetic speaker
ROOM_COPIES = 2  # copies of each clip heard in a room over ambience, with --negatives
# What a copy goes through, in the frontend's dB: a room half the time (RT60 from
# --rt60), real ambience from the negatives most of the time (SNR from --snr), a
# level change (the network hears absolute level) and another microphone's curve.
COPY_AUGMENT = AugmentConfig(
    shift=False,
    gain_db=10.0,
    snr_db=(0.0, 25.0),
    noise_prob=0.8,
    speed=0.1,
    vtlp=0.0,
    eq_db=6.0,
    lowpass_prob=0.0,
    time_masks=0,
    freq_masks=0,
    reverb_prob=REVERB_SHARE,
)
# Keyword layouts, a head on a frozen network: each clip also as other voices might
# say it (tempo, vocal tract length as a mel-axis warp, microphone curve, level).
# Leaving one FSDD speaker out, 3 such copies lifted the speech-embedding head from
# 94.2% to 94.6% (with the 32 synthetic speakers); without those, in an experiment,
# from 93.9% to 94.8%, where warps of 20% hurt (93.3%).
SPEAKER_COPIES = 3
SPEAKER_AUGMENT = replace(AugmentConfig.off(), gain_db=6.0, speed=0.12, vtlp=0.12, eq_db=6.0)


@dataclass
class Copies:
    """Embeddings of augmented copies of the dataset's clips, and whose copy each
    is: a fold trains on the copies of its training clips only."""

    embeddings: list[np.ndarray]  # [1, D] per copy
    owner: np.ndarray  # the clip index of each copy

    def of(self, members: Sequence[int], labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        chosen = np.flatnonzero(np.isin(self.owner, np.asarray(members)))
        x = np.concatenate([self.embeddings[i] for i in chosen])
        return x, labels[self.owner[chosen]]


def copy_augment(args: argparse.Namespace) -> AugmentConfig:
    """COPY_AUGMENT with the room and ambience options of `train` applied."""
    from .train import with_room_options

    return with_room_options(COPY_AUGMENT, args)


def room_copies(
    clips: ClipSet,
    negatives: Negatives,
    frontend: FrontendConfig,
    plan: WindowPlan,
    augment: AugmentConfig,
    seed: int,
    log: Log,
) -> tuple[ClipSet, np.ndarray]:
    """ROOM_COPIES copies of every dataset clip heard in a room over ambience."""
    from .room import ROOMS, RoomConfig, kernel_bank
    from .train import ambience

    scale = np.float32(db_per_unit(frontend))  # features to dB, as in augmented_copies
    rooms = kernel_bank(frontend, RoomConfig(augment.rt60), ROOMS, seed)
    log(
        f"rooms: {len(rooms)} impulse responses, RT60 {augment.rt60[0]:g}-{augment.rt60[1]:g} s "
        f"({room_method()}); {ROOM_COPIES} copies of each clip, in rooms and over ambience at "
        f"{augment.snr_db[0]:g}-{augment.snr_db[1]:g} dB SNR"
    )
    bank = [w * scale for w in ambience(negatives, seed)]
    return augmented_copies(
        clips, frontend, plan, augment, ROOM_COPIES, seed + 777, "room", bank, rooms
    )


def speaker_copies(
    clips: ClipSet, frontend: FrontendConfig, plan: WindowPlan, count: int, seed: int, log: Log
) -> tuple[ClipSet, np.ndarray]:
    """`count` copies of every dataset clip as other voices might say it (--speaker-copies)."""
    a = SPEAKER_AUGMENT
    log(
        f"voices: {count} copies of each clip, tempo x{1 - a.speed:g}-{1 + a.speed:g}, "
        f"mel axis x{1 - a.vtlp:g}-{1 + a.vtlp:g}, tilt +-{a.eq_db:g} dB, level +-{a.gain_db:g} dB"
    )
    return augmented_copies(clips, frontend, plan, a, count, seed + 555, "voice")


def augmented_copies(
    clips: ClipSet,
    frontend: FrontendConfig,
    plan: WindowPlan,
    augment: AugmentConfig,
    count: int,
    seed: int,
    tag: str,
    bank: list[np.ndarray] | None = None,
    rooms: list[np.ndarray] | None = None,
) -> tuple[ClipSet, np.ndarray]:
    """`count` augmented first windows of every dataset clip (not of the negatives or
    synthetic speakers), drawn with their own seed, as a ClipSet the embedding cache
    can hold, and the clip each copy came from. Augmentation works in dB
    (export/room.db_per_unit: for EfficientAT's natural log, 4.34 dB a unit)."""
    scale = np.float32(db_per_unit(frontend))
    rng = np.random.default_rng(seed)
    made: list[Clip] = []
    owner: list[int] = []
    for i, clip in enumerate(clips.clips):
        if clip.synthetic:
            continue
        window = plan.clip_windows(clip.features)[:1] * scale
        for k in range(count):
            out = augment_batch(window, augment, rng, bank, rooms)[0] / scale
            out = np.maximum(out, np.float32(plan.floor)).astype(np.float32)
            made.append(Clip(out, clip.label, clip.group, f"{clip.source}#{tag}{k}", True))
            owner.append(i)
    return ClipSet(made, clips.labels), np.asarray(owner, dtype=int)


def speaker_copy_count(args: argparse.Namespace, preset: Preset, stages: int) -> int:
    """--speaker-copies, by default SPEAKER_COPIES for spoken keywords under a head."""
    if args.speaker_copies is not None:
        if args.speaker_copies < 0:
            raise ConfigError(f"--speaker-copies {args.speaker_copies}: 0 or more")
        if args.speaker_copies and stages:
            raise ConfigError(
                "--speaker-copies is for a head on frozen embeddings, not with --fine-tune"
            )
        return int(args.speaker_copies)
    return SPEAKER_COPIES if preset.mode == "keyword" and not stages else 0


def with_negatives(
    args: argparse.Namespace,
    clips: ClipSet,
    cache: FeatureCache,
    plan: WindowPlan,
    voices: int,
    log: Log,
) -> tuple[ClipSet, Negatives]:
    """`--negatives` on a backbone: the train part of the negatives joins every
    fold's training side as a `_background_` class (marked training-only, so no
    fold tests on it); the validation and calibration parts stay unheard, for
    `calibrate` and the benchmarks. With synthetic speakers (`voices`), words that
    are not classes, said by espeak-ng, join the background too."""
    from .train import load_logged_negatives

    negatives = load_logged_negatives(args, cache, plan, log)
    extra = [replace(c, synthetic=True) for c in negatives.parts["train"].clips]
    words = other_words(clips, args, cache, OTHER_WORDS_PER_VOICE * voices)
    if words:
        log(f"other words: {len(words)} espeak-ng words that are no class, as background")
    extra += words
    labels = [*clips.labels, BACKGROUND] if BACKGROUND not in clips.labels else clips.labels
    return ClipSet([*clips.clips, *extra], labels, clips.skipped), negatives


def other_words(
    clips: ClipSet, args: argparse.Namespace, cache: FeatureCache, count: int
) -> list[Clip]:
    """Words that are not classes, said by espeak-ng voices, as training-only
    background: talk is what a keyword detector mistakes most."""
    from .material import non_target_speech

    said = non_target_speech(clips.labels, args.layout, cache, count, args.seed)
    return [
        Clip(cache.features_of(a, "other-words"), BACKGROUND, "synth", f"other-word{i}", True)
        for i, a in enumerate(said)
    ]


def head_l2_setting(given: str | float | None) -> float | None:
    """--head-l2 as the head fits it: a penalty, or None to choose one per fit
    ('auto', the default)."""
    if given is None or given == "auto":
        return None
    try:
        value = float(given)
    except ValueError:
        raise ConfigError(f"--head-l2 {given}: a penalty such as 0.01, or 'auto'") from None
    if not np.isfinite(value) or value < 0:
        raise ConfigError(f"--head-l2 {given}: a penalty of 0 or more, or 'auto'")
    return value


def train_on_backbone(args: argparse.Namespace, preset: Preset, log: Log) -> int:
    located = locate(args.backbone)
    spec = located.spec
    log(f"backbone {spec.name} ({located.weights}, sha256 ok): {spec.source}; {spec.licence}")
    frontend = spec.frontend
    window_s, hop_s = BACKBONE_WINDOWS.get(args.layout, (preset.window_s, preset.hop_s))
    window_s = spec.window_s or window_s
    window_s, hop_s = args.window or window_s, args.hop or hop_s
    from .train import dataset_record, load_dataset, window_plan

    plan = window_plan(frontend, window_s, hop_s, args.mode or preset.mode)
    index, cache, clips = load_dataset(args, frontend, log)
    from .material import synthetic_speakers

    dataset = dataset_record(args, index, clips)  # the user's clips, before any added
    count = preset.synth_speakers if args.synth_speakers is None else args.synth_speakers
    synth, voice_names = synthetic_speakers(clips, args.layout, count, cache, args.seed, log)
    if synth:
        log(f"synthetic speakers: {len(voice_names)} espeak-ng voices, training only")
        clips = ClipSet([*clips.clips, *synth], clips.labels, clips.skipped)
    negatives = None
    if args.negatives:
        clips, negatives = with_negatives(args, clips, cache, plan, len(voice_names), log)

    size = args.size or "head"
    if spec.family == "speech-embedding" and (
        size not in HEAD_SIZES or args.fine_tune or args.teacher
    ):
        raise ConfigError(
            f"{spec.name} trains a head on its frozen embeddings only: --size head or mlp, "
            "no --fine-tune or --teacher"
        )
    if size not in BACKBONE_SIZES:
        raise ConfigError(
            f"--size {size}: with --backbone, 'head' (the whole network and a linear head), "
            "'mlp' (the same with a one-hidden-layer head) or 'tiny' (its first stages, a new "
            "layer and head: a student for --teacher)"
        )
    started = time.time()
    network = load_network(located)
    kept = TINY_STAGES if size == "tiny" else None
    total = 1 if spec.family == "speech-embedding" else len(network.features)
    total = total if kept is None else kept + 1
    stages = parse_stages(args.fine_tune, total)
    if size == "tiny" and args.fine_tune is None:
        stages = total - TINY_FROZEN
    if size == "tiny" and stages == 0:
        raise ConfigError("--size tiny: its new layer must train; --fine-tune 1 at least")
    if args.teacher and not stages:
        raise ConfigError(
            "--teacher distils into layers that train: add --fine-tune N or --size tiny"
        )
    if size == "mlp" and stages:
        raise ConfigError("--size mlp is a head on the frozen network: leave out --fine-tune")
    cut = total - stages
    if args.int8_aware and not (stages and cut):
        raise ConfigError(
            "--int8-aware trains the stages above a frozen cut on its int8 output: "
            + (
                "--fine-tune all leaves no frozen stage"
                if stages
                else "add --fine-tune N or --size tiny"
            )
        )
    l2 = head_l2_setting(args.head_l2)
    if stages and args.head_l2 is not None:
        raise ConfigError("--head-l2 is for the head alone: --fine-tune trains its head by SGD")
    if size == "mlp" and args.head_l2 is not None:
        raise ConfigError("--head-l2 is for the linear head (--size head), not --size mlp")
    hidden = hidden_units(size)
    voice_copies = speaker_copy_count(args, preset, stages)
    embeddings: list[np.ndarray] = []
    activations = None
    if stages:
        activations = NetworkCache(
            cache,
            located,
            plan,
            lambda w: lower_activations(network, cut, w),
            "activations",
            f"stages<{cut}",
            np.float16,
        ).outputs(clips, not args.quiet)
    else:
        embedder = classifier_on(spec, network, len(clips.labels), plan.frames)
        embedded = NetworkCache(cache, located, plan, embed_windows(embedder))
        embeddings = embedded.outputs(clips, not args.quiet)
    copies, augment = None, None
    made: list[Clip] = []
    owners: list[np.ndarray] = []
    if negatives and not stages and args.reverb is not False:
        augment = copy_augment(args)
        room, owner = room_copies(clips, negatives, frontend, plan, augment, args.seed, log)
        made, owners = [*made, *room.clips], [*owners, owner]
    if voice_copies:
        spoken, owner = speaker_copies(clips, frontend, plan, voice_copies, args.seed, log)
        made, owners = [*made, *spoken.clips], [*owners, owner]
    if made:
        copied = ClipSet(made, clips.labels)
        copies = Copies(embedded.outputs(copied, not args.quiet), np.concatenate(owners))
    log(
        f"{'frozen activations' if stages else 'embeddings'} of "
        f"{sum(len(e) for e in activations or embeddings)} windows ({window_s} s) in "
        f"{time.time() - started:.0f} s"
    )

    from .zoo import ModelSpec, build_model, profile

    model_spec = ModelSpec(spec.name, size, len(clips.labels), (plan.frames, frontend.n_mels))
    prof = profile(build_model(model_spec), model_spec.input_shape)
    tune = None
    if stages:
        student = kept is not None
        tune = FineTuneSettings(
            stages,
            planned_epochs(
                sum(len(a) for a in activations or []),
                args.epochs,
                STUDENT_EPOCHS if student else FINE_TUNE_EPOCHS,
            ),
            args.body_lr or (STUDENT_BODY_LR if student else BODY_LR),
            MIXUP_ALPHA if args.mixup is None else args.mixup,
        )
        use = f"fine-tuned: top {stages} of {total} stages and a new head"
        if kept is not None:
            use = (
                f"its first {kept} stages, a new 1x1 conv and head; the top {stages} of these "
                f"{total} stages trained"
            )
        if args.teacher:
            use += f", distilled from {args.teacher}"
        training: dict[str, Any] = tune.record(total, str(args.teacher) if args.teacher else None)
        if args.int8_aware:
            use += "; trained on the frozen stages' float and int8 outputs"
            training["int8_aware"] = {
                "calibration_windows": CALIBRATION_WINDOWS,
                "how": "every training window twice: the frozen stages' float output and "
                "their int8 output (PT2E post-training quantisation simulated in torch, "
                "calibrated on the fold's training windows)",
            }
    elif hidden:
        use = f"frozen embeddings, MLP head ({hidden} hidden units)"
        training = {"head": f"MLP, {hidden} hidden units ({MLP_RECIPE})"}
    else:
        use = "frozen embeddings, linear head"
        l2_record: Any = l2
        if l2 is None:
            use += "; L2 penalty chosen by group cross-validation"
            l2_record = {"chosen_from": list(L2_GRID), "by": "cross-validation over groups"}
        training = {"head": "logistic regression (L-BFGS)", "l2": l2_record}
    log(f"model {spec.name}, {use}: {prof.describe()}")
    config = RunConfig(
        model=ModelRecord(
            spec.name,
            size,
            prof.params,
            prof.macs,
            prof.int8_bytes,
            None,
            model_spec.input_shape,
            "none",
            {
                **spec.to_record(),
                "use": use,
                **({} if stages or hidden else {"head_l2": "auto" if l2 is None else l2}),
            },
        ),
        frontend=frontend,
        labels=tuple(clips.labels),
        background_class=BACKGROUND if negatives else None,
        negatives=negatives.summary() if negatives else {},
        window=RunWindow(plan.frames, plan.mode, plan.hop, window_s, hop_s),
        dataset=dataset,
        synthetic_speakers=tuple(voice_names),
        seed=args.seed,
        augmentation={
            **(
                {}
                if augment is None
                else {**augment.to_dict(), "copies": ROOM_COPIES, "rooms": room_method()}
            ),
            **(
                {"speaker_copies": {"count": voice_copies, **SPEAKER_AUGMENT.to_dict()}}
                if voice_copies
                else {}
            ),
        },
        training=training,
        command="python -m export " + " ".join(shlex.quote(a) for a in args.argv),
    )
    data = BackboneData(
        clips,
        network,
        spec,
        plan.frames,
        preset.mode == "segments",
        embeddings,
        copies,
        activations,
        cut,
        kept,
        l2,
        tune,
        args.seed,
        not args.quiet,
        hidden,
        Int8Lower(cache, located, plan, network, cut, args.seed, not args.quiet)
        if args.int8_aware
        else None,
    )
    teachers = None
    if args.teacher:
        teachers = Teachers(args.teacher, cache, located, plan, clips, not args.quiet)
    folds = plan_folds(clips, args.holdout_group, args.val_group, args.cv, args.seed)
    results = []
    for fold in folds:
        result = run_fold(data, fold, log, teachers)
        results.append(result)
        write_run(args.out / f"fold-{fold.name}" if args.cv else args.out, result, config, log)
    final_checks = results[-1].checks
    if args.cv:
        summary = write_cv_summary(args.out, results, config, log)
        final_checks = merge_checks(results)
        if args.fit_all:
            log("final fit on every group; its estimate is the cross-validated figure")
            final = run_fold(data, Fold("all", [], []), log, teachers)
            write_run(args.out, final, config, log, summary)
    log("")
    for line in checks.format_checks(final_checks):
        log(line)
    log(f"wrote {args.out}")
    log.write(Path(args.out) / "train.log")
    return 0
