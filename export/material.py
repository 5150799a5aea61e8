"""What a detector trains on besides the labelled clips: a background class cut
from noise and non-target speech, and synthetic espeak-ng speakers."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .data import (
    BACKGROUND,
    Clip,
    ClipSet,
    FeatureCache,
    Split,
    background_clips,
)
from .fit import Log, _progress
from .mining import MiningSettings
from .negatives import SHARES, Negatives, group_of
from .presets import Preset


def words_for(labels: list[str], layout: str) -> dict[str, str] | None:
    """What to say for each label, for synthetic speakers (None: not a word task)."""
    from .synth import DIGIT_WORDS

    if layout == "fsdd":
        return {label: DIGIT_WORDS[int(label)] for label in labels if label.isdigit()}
    if layout == "speech-commands":
        return {label: label for label in labels}
    return None


def synthetic_speakers(
    clips: ClipSet, layout: str, count: int, cache: FeatureCache, seed: int, log: Log
) -> tuple[list[Clip], list[str]]:
    """Training-only speakers spoken by espeak-ng voices (never the demo's voices):
    more voices is what makes a keyword model hear the word rather than the speaker."""
    from .synth import DEMO_VOICE_KEYS, have_espeak, speak_cached, voices

    words = words_for(clips.labels, layout)
    if not count or not words:
        return [], []
    if not have_espeak():
        log(
            "note: espeak-ng is not installed, so no synthetic speakers are added "
            "(apt install espeak-ng)"
        )
        return [], []
    rng = np.random.default_rng(seed + 1000)
    chosen = voices(rng, count, exclude=set(DEMO_VOICE_KEYS))
    out = []
    for voice in _progress(chosen, "synthetic speakers", "voice"):
        for label, word in words.items():
            samples = speak_cached(word, voice, cache.config.sample_rate, cache.dir.parent)
            feats = cache.features_of(samples, "synth")
            out.append(
                Clip(
                    feats,
                    label,
                    f"synth:{voice.name}",
                    f"espeak:{voice.name}:{word}",
                    synthetic=True,
                )
            )
    return out, [v.name for v in chosen]


def non_target_speech(
    labels: list[str], layout: str, cache: FeatureCache, count: int, seed: int
) -> list[np.ndarray]:
    """Spoken words that are not classes: the background class's 'speech, but no keyword'."""
    from .synth import DEMO_VOICE_KEYS, NON_TARGET_WORDS, have_espeak, speak_cached, voices

    words = words_for(labels, layout)
    if not count or words is None or not have_espeak():
        return []
    said = set(words.values())
    candidates = [w for w in NON_TARGET_WORDS if w not in said]
    rng = np.random.default_rng(seed + 2000)
    chosen = voices(rng, max(1, count // len(candidates) + 1), exclude=set(DEMO_VOICE_KEYS))
    audio = [
        speak_cached(w, v, cache.config.sample_rate, cache.dir.parent)
        for v in chosen
        for w in candidates
    ]
    return audio[:count]


def add_background(
    clips: ClipSet,
    split: Split,
    cache: FeatureCache,
    seed: int,
    window_s: float,
    speech: list[np.ndarray],
) -> tuple[ClipSet, Split]:
    """Append background clips to each side of the split, about one class's worth
    each, generated with a different seed per side (so no side shares a clip)."""
    labels = sorted({*clips.labels, BACKGROUND})
    all_clips = list(clips.clips)
    sides = {
        "train": list(split.train),
        "validation": list(split.validation),
        "test": list(split.test),
    }
    n_classes = len(clips.labels)
    for k, (side, members) in enumerate(sides.items()):
        count = max(8, len(members) // n_classes)
        share = speech[k::3] if side == "train" or len(speech) < 3 else speech[k::3][: count // 3]
        extra = background_clips(
            cache,
            count,
            window_s,
            seed + 7919 * (k + 1),
            f"{BACKGROUND}{side}",
            share[: count // 2],
        )
        members.extend(range(len(all_clips), len(all_clips) + len(extra)))
        all_clips.extend(extra)
    out = ClipSet(all_clips, labels, clips.skipped)
    return out, Split(
        sides["train"],
        sides["validation"],
        sides["test"],
        split.test_groups,
        split.validation_groups,
    )


def add_negatives(clips: ClipSet, split: Split, negatives: Negatives) -> tuple[ClipSet, Split]:
    """The negatives' train part joins the training side, their validation part
    the validation side (when the fold has one); the calibration part joins
    neither. Every fold gets the same negatives: they hold no class, so they
    cannot leak a test group."""
    all_clips = list(clips.clips)
    sides = {"train": list(split.train), "validation": list(split.validation)}
    for side, members in sides.items():
        if side == "validation" and not split.test_groups:
            continue  # the final fit validates nothing
        extra = negatives.parts[side].clips
        members.extend(range(len(all_clips), len(all_clips) + len(extra)))
        all_clips.extend(extra)
    out = ClipSet(all_clips, clips.labels, clips.skipped)
    return out, replace(split, train=sides["train"], validation=sides["validation"])


def cap_validation_negatives(clips: ClipSet, split: Split, per_epoch: int, seed: int) -> Split:
    """With --negatives-per-epoch, early stopping scores a fixed, seeded subset of
    the validation negatives, as many against the training draw as the parts' own
    shares (15 to 70): thousands of windows of talk would otherwise decide the
    epoch kept, whatever the classes do."""
    cap = max(1, round(per_epoch * SHARES[1] / SHARES[0]))
    negatives = [i for i in split.validation if is_validation_negative(clips.clips[i])]
    if len(negatives) <= cap:
        return split
    rng = np.random.default_rng(seed + 929)
    dropped = set(negatives) - set(rng.choice(negatives, size=cap, replace=False).tolist())
    return replace(split, validation=[i for i in split.validation if i not in dropped])


def is_validation_negative(clip: Clip) -> bool:
    """A refit merges validation into training, but never the negatives' validation
    part: it stays unheard so that reports on it are honest."""
    return clip.group == group_of("validation")


@dataclass
class Material:
    """Everything a fold trains on, prepared once per run."""

    clips: ClipSet
    synth: list[Clip]
    preset: Preset
    background: bool
    cache: FeatureCache
    bank: list[np.ndarray]
    speech: list[np.ndarray]
    groups_declared: bool
    negatives: Negatives | None = None
    rooms: list[np.ndarray] | None = None  # mel kernels for reverberation (export/room.py)
    mining: MiningSettings | None = None  # hard-negative rounds (export/mining.py)
