"""The bundle's manifest (through edge_audio.manifest) and its model card."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_audio import __version__
from edge_audio.bundle import sha256_of
from edge_audio.bundle import write_manifest as write_bundle_manifest
from edge_audio.datasets import describe_groups
from edge_audio.digest import TrainingDigest
from edge_audio.manifest import (
    ArtefactEntry,
    InputSpec,
    Licence,
    Manifest,
    Quantization,
    TrainingRecord,
    Verification,
    WindowSpec,
)

from .trained_run import Run
from .verify import FP32_AGREEMENT, INT8_MAX_DROP

# Seconds between windows when listening: a word of ~0.5 s is seen by 3-4 windows.
DEFAULT_STREAM_STRIDE = 0.25


LICENCES = {
    "fsdd": (
        "CC BY-SA 4.0",
        "Free Spoken Digit Dataset (Jakobovski et al., "
        "github.com/Jakobovski/free-spoken-digit-dataset), CC BY-SA 4.0",
    ),
    "esc50": (
        "CC BY-NC 3.0 (non-commercial use only)",
        "ESC-50 by K. J. Piczak "
        "(github.com/karolpiczak/ESC-50), CC BY-NC 3.0: non-commercial use only",
    ),
    "music_speech": (
        "research use",
        "GTZAN music/speech collection by G. Tzanetakis (marsyas.info), for research use",
    ),
}


def write_manifest(
    out: Path,
    run: Run,
    name: str,
    results: dict,
    io_quant: dict,
    overridden: list[str],
    calibration: int,
    *,
    stream_stride: float = DEFAULT_STREAM_STRIDE,
    int8_method: str | None = None,
    digest: TrainingDigest | None = None,
) -> Manifest:
    files = {
        "onnx-fp32": "model.fp32.onnx",
        "onnx-int8": "model.int8.onnx",
        "tflite-fp32": "model.fp32.tflite",
        "tflite-int8": "model.int8.tflite",
    }
    dataset = run.config.dataset
    licence_key = {"fsdd": "fsdd", "esc50": "esc50"}.get(dataset.layout, Path(dataset.root).name)
    licence, attribution = LICENCES.get(
        licence_key,
        ("the licence of the training data", f"trained on {Path(dataset.root).name}"),
    )
    negatives = run.config.negatives or {}
    indexed = negative_licences(negatives)
    for folder in negatives.get("folders", []):
        # Negatives are training data too: their licences bind the model as well.
        extra = LICENCES.get(Path(folder).name)
        if extra is None and indexed:
            continue  # an index.csv named each source's licence: listed below
        if extra is None:
            licence += f" + the licence of {Path(folder).name}"
            attribution += f"; negatives from {Path(folder).name}"
        elif extra[0] not in licence:
            licence += f" + {extra[0]}"
            attribution += f"; negatives: {extra[1]}"
    for source, terms in indexed.items():
        if terms not in licence:
            licence += f" + {terms}"
        attribution += f"; negatives: {source} ({terms})"
    backbone = run.config.model.backbone
    if backbone:  # the weights it started from have their own licence and authors
        attribution += (
            f"; built on the pretrained network {backbone['source']} "
            f"(weights licence: {backbone['licence']})"
        )
    artefacts = {}
    for key, file in files.items():
        path = out / file
        if not path.exists():
            continue
        fmt, precision = key.split("-")
        int8_tflite = key == "tflite-int8"
        artefacts[key] = ArtefactEntry(
            file,
            fmt,
            precision,
            sha256_of(path),
            path.stat().st_size,
            Quantization(**io_quant["input"]) if int8_tflite else None,
            Quantization(**io_quant["output"]) if int8_tflite else None,
            {k: v for k, v in results.get(key, {}).items() if k != "confusion"},
            int8_method if int8_tflite else None,
        )
    config = run.config
    test_groups, window = config.test_groups, config.window
    validation_groups = config.split.validation_groups if config.split else ()
    manifest = Manifest(
        name=name,
        created_by=f"edge-audio {__version__}",
        labels=tuple(run.labels),
        background_label=config.background_class,
        frontend=run.frontend,
        window=WindowSpec(
            run.plan.frames,
            run.plan.mode,
            run.plan.hop,
            window.seconds,
            window.hop_seconds,
            stream_stride,
        ),
        input=InputSpec(
            (1, 1, *config.model.input_shape),
            config.model.dynamic_range,
            config.model.normalisation,
        ),
        model=config.model.to_dict(),
        artefacts=artefacts,
        training=TrainingRecord(
            dataset=Path(dataset.root).name,
            layout=dataset.layout,
            clips=dataset.clips,
            groups=dataset.groups,
            test_groups=test_groups,
            validation_groups=validation_groups,
            synthetic_speakers=len(config.synthetic_speakers),
            command=config.command,
            seed=config.seed,
            final_fit=not test_groups,
            cross_validation=cv_estimate(run),
            files_digest=digest,
            negatives=dict(config.negatives) if config.negatives else None,
            groups_option=dataset.groups_option,
        ),
        calibration_windows=calibration,
        verification=Verification(test_groups, FP32_AGREEMENT, INT8_MAX_DROP, tuple(overridden)),
        licence=Licence(licence, attribution),
    )
    write_bundle_manifest(out, manifest)
    return manifest


def cv_estimate(run: Run) -> dict[str, Any] | None:
    """A final fit's cross-validated accuracy (written by train --cv --fit-all)."""
    estimate = run_metrics(run).get("estimate")
    if not estimate:
        return None
    summary = {
        "accuracy_mean": estimate["accuracy"]["mean"],
        "accuracy_min": estimate["accuracy"]["min"],
        "folds": {f["name"]: f["accuracy"] for f in estimate["folds"]},
        "note": "fp32, each fold's model tested on its held-out group",
    }
    if "segment_accuracy" in estimate:  # long clips, each window scored on its own
        summary["segment_accuracy_mean"] = estimate["segment_accuracy"]["mean"]
        summary["segment_accuracy_min"] = estimate["segment_accuracy"]["min"]
    return summary


def segment_estimate(cv: Mapping[str, Any]) -> str:
    if "segment_accuracy_mean" not in cv:
        return ""
    return (
        f"; window by window, as a stream is labelled: {100 * cv['segment_accuracy_mean']:.1f}% "
        f"mean (min {100 * cv['segment_accuracy_min']:.1f}%)"
    )


def how_trained(training: TrainingRecord) -> str:
    """The card's sentence on the split."""
    if training.final_fit:
        cv = training.cross_validation or {}
        folds = ", ".join(f"{k} {100 * v:.1f}%" for k, v in cv.get("folds", {}).items())
        return (
            "on every group (a final fit after the cross-validation, trained as long as its "
            f"folds were; nothing held out). Cross-validated estimate (fp32): "
            f"{100 * cv.get('accuracy_mean', float('nan')):.1f}% mean ({folds})"
            + segment_estimate(cv)
        )
    validation = (
        f" and {describe_groups(list(training.validation_groups))} for validation"
        if training.validation_groups
        else ""
    )
    return (
        f"holding out {describe_groups(list(training.test_groups))} for test{validation} "
        "(no group on two sides; every group is listed in manifest.json)"
    )


def negative_licences(negatives: Mapping[str, Any]) -> dict[str, str]:
    """Source -> licence, as the negatives' index.csv files gave them (every part:
    the model heard the train part, and was calibrated on another)."""
    found: dict[str, str] = {}
    for part in ("train", "validation", "calibration"):
        found.update((negatives.get(part) or {}).get("licences", {}))
    return dict(sorted(found.items()))


def mining_sentence(recipe: Mapping[str, Any] | None, rounds: list[dict[str, Any]]) -> str:
    """The card's line on hard-negative mining: the recipe and what each round found."""
    if not recipe:
        return ""
    found = "; ".join(
        f"round {r['round']}: {r['above_half']:,} of {r['windows_scored']:,} windows scored "
        f"above 0.5, {r['added']} added"
        for r in rounds
    )
    return (
        f" Hard negatives: {recipe['rounds']} round(s) of mining; after each fit the model "
        f"scored every window of the train part every {recipe['stride_s']:g} s and the "
        f"{recipe['windows']} highest (at most {recipe['per_file']} a recording) joined the "
        f"background, x{recipe['weight']}, before it fitted again"
        + (f" ({found})." if found else ".")
    )


def negatives_sentence(
    negatives: Mapping[str, Any] | None, rounds: list[dict[str, Any]] | None = None
) -> str:
    """The card's line on the background recordings: hours per source and part,
    how the parts were kept apart, and any mining."""
    if not negatives:
        return ""
    parts = {p: negatives.get(p) or {} for p in ("train", "validation", "calibration")}
    total = sum(float(p.get("hours", 0.0)) for p in parts.values())
    sources: dict[str, float] = {}
    for part in parts.values():
        for source, hours in (part.get("hours_by_source") or {}).items():
            sources[source] = sources.get(source, 0.0) + float(hours)
    listed = ", ".join(f"{k} {v:.2f} h" for k, v in sorted(sources.items()))
    speakers = sum(float(p.get("hours_split_by_speaker", 0.0)) for p in parts.values())
    split = ", ".join(f"{name} {float(p.get('hours', 0.0)):.2f} h" for name, p in parts.items())
    return (
        f"\nBackground (`_background_`) from {total:.2f} h of negative recordings"
        + (f" ({listed})" if listed else "")
        + f", split into {split}: {speakers:.2f} h kept apart by speaker, the rest by "
        "recording, so no calibration or validation recording shares a voice or a "
        "recording with training (files without a speaker id can share a voice)."
        + mining_sentence(negatives.get("mining"), rounds or [])
    )


def pretrained_sentence(backbone: Any, head_l2: dict[str, Any] | None = None) -> str:
    if not backbone:
        return ""
    penalty = ""
    if head_l2 and head_l2.get("how") == "chosen":
        penalty = (
            f" The head's L2 penalty, {head_l2['l2']:g}, was chosen by "
            f"{head_l2['folds']}-fold cross-validation over the training groups."
        )
    return (
        f"\nBuilt on a pretrained network ({backbone.get('use', 'backbone')}): "
        f"{backbone['source']}; weights licence {backbone['licence']}; "
        f"sha256 {backbone['sha256']}.{penalty}"
    )


def run_metrics(run: Run) -> dict[str, Any]:
    """The run's metrics.json, or nothing when it has none."""
    path = run.root / "metrics.json"
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def write_card(out: Path, manifest: Manifest, run: Run, quantize_command: str) -> None:
    rows = []
    for key, entry in manifest.artefacts.items():
        m = entry.metrics
        rows.append(
            f"| {key} | {entry.size / 1024:.1f} KB | "
            f"{100 * m.get('accuracy', float('nan')):.1f}% | "
            f"{100 * m.get('macro_f1', float('nan')):.1f}% | "
            f"{100 * m.get('agreement_with_torch', float('nan')):.1f}% | "
            f"{m.get('runtime', '-')} |"
        )
    model = manifest.model
    pretrained = pretrained_sentence(model.get("backbone"), run_metrics(run).get("head_l2"))
    labels = [label for label in manifest.labels if label != manifest.background_label]
    training = manifest.training
    verification = manifest.verification
    licence = manifest.licence
    assert training is not None and verification is not None and licence is not None
    background = (
        f" It also has a `{manifest.background_label}` class (silence, noise, "
        'other speech) so that it can say "nothing here" between sounds.'
        if manifest.background_label
        else ""
    )
    text = f"""# {manifest.name}

## What it recognises
{len(labels)} classes: {", ".join(labels)}.{background}
Input: {manifest.window.seconds} s windows of {run.frontend.sample_rate} Hz audio as
{run.frontend.n_mels}-band log-mel features ({run.frontend.fmin:g}-{
        run.frontend.top_frequency:g} Hz).

## Model
{model["name"]}-{model["size"]}: {model["params"]:,} parameters, {model["macs"] / 1e6:.2f} M
multiply-accumulates per window.{pretrained}

## How it was trained
On `{training.dataset}` ({training.layout} layout, {training.clips} clips),
{how_trained(training)}{
        "; plus "
        + str(training.synthetic_speakers)
        + " synthetic espeak-ng speakers as training-only data"
        if training.synthetic_speakers
        else ""
    }.{negatives_sentence(training.negatives, run_metrics(run).get("mining"))}
Reproduce it from the data with:

```sh
{training.command}
{quantize_command}
```

## Verified metrics ({
        "held-out " + describe_groups(list(training.test_groups))
        if training.test_groups
        else "a sample of its own training clips: a fidelity check, not an accuracy estimate"
    }, device runtime)
| artefact | size | accuracy | macro-F1 | agreement with torch | runtime |
|---|---|---|---|---|---|
{chr(10).join(rows)}

## Limits
- Judged on {
        "the held-out group above only"
        if training.test_groups
        else "cross-validation over the groups it was trained on"
    }: other speakers, microphones and rooms can score lower.
- The model hears {run.frontend.fmin:g}-{run.frontend.top_frequency:g} Hz; a microphone at any
  rate is resampled to {run.frontend.sample_rate} Hz.
- Thresholds overridden at export: {", ".join(verification.thresholds_overridden) or "none"}.

## Licence
Trained on data under {licence.data}. Attribution:
{licence.attribution}.
"""
    (out / "card.md").write_text(text)


def command_of(args: argparse.Namespace) -> str | None:
    """The command line that ran, as a card records it to be run again."""
    argv = getattr(args, "argv", None)
    return None if argv is None else "python -m export " + shlex.join(argv)


def replace_card_section(bundle_dir: Path, heading: str, section: str) -> None:
    """Put `section` (which starts with `heading`) into the bundle's card, in place
    of an earlier one, before the Limits section; no card, nothing to do."""
    card = Path(bundle_dir) / "card.md"
    if not card.exists():
        return
    text = card.read_text()
    if heading in text:
        before, _, after = text.partition(heading)
        rest = after.split("\n## ", 1)
        text = before + (f"## {rest[1]}" if len(rest) > 1 else "")
    head, sep, tail = text.partition("## Limits")
    card.write_text(head + section + "\n" + sep + tail if sep else text + section)
