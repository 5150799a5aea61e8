"""`edge-audio train` / `python -m export train`: train a compact CNN on a dataset.

    python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/fsdd
    python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/fsdd-cv --cv

The run directory gets checkpoint.pt, config.json, metrics.json, confusion.png,
curves.png, history.csv and train.log. With --cv, one such folder per held-out
group and cv.json with the mean and spread.

This module is the command: options, presets and the order of the steps. Each
step is a module of its own: folds.py (who trains, validates, tests),
material.py (background and synthetic speakers), fit.py (the loop and early
stopping), runs.py (what a run writes), checks.py (the warnings at the end).
"""

from __future__ import annotations

import argparse
import shlex
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_audio.datasets import GROUPS_HELP, LAYOUTS, DatasetIndex, describe_groups, scan
from edge_audio.errors import ConfigError, DatasetError
from edge_audio.frontend import FrontendConfig
from edge_audio.metrics import classification_report

from . import checks
from .augment import REVERB_SHARE, AugmentConfig
from .data import (
    BACKGROUND,
    ClipSet,
    FeatureCache,
    Split,
    WindowPlan,
    group_split,
    index_windows,
    load_clips,
    noise_bank,
)
from .distributed import World
from .finetune import BODY_LR, STUDENT_BODY_LR
from .fit import (
    Log,
    TrainSettings,
    batch_probabilities,
    evaluate_clips,
    fit,
    require_torch,
    window_probabilities,
)
from .folds import Fold, limit_per_class_and_group, plan_folds
from .material import (
    Material,
    add_background,
    add_negatives,
    cap_validation_negatives,
    is_validation_negative,
    non_target_speech,
    synthetic_speakers,
    words_for,
)
from .mining import MiningRound, MiningSettings, mine_round
from .negatives import WINDOWS_PER_FILE, Negatives, load_negatives
from .presets import PRESETS, Preset
from .room import ROOMS, RoomConfig, kernel_bank, room_method

# --- folds ----------------------------------------------------------------------
from .run_config import DatasetRecord, ModelRecord, RunConfig, RunWindow
from .runs import (
    FoldResult,
    final_epochs,
    fold_checks,
    merge_checks,
    run_baseline,
    write_cv_summary,
    write_run,
)
from .schedule import DEFAULT_MIN_STEPS

# --- synthetic speakers and background --------------------------------------------


# --- training ---------------------------------------------------------------------


def run_fold(
    material: Material, fold: Fold, settings: TrainSettings, log: Log, world: World
) -> FoldResult:
    start = time.time()
    preset, cache = material.preset, material.cache
    combined = ClipSet(material.clips.clips + material.synth, material.clips.labels)
    if fold.test_groups:
        split = group_split(combined, fold.test_groups, fold.validation_groups, settings.seed)
    else:  # the final fit: every group trains, nothing is held out
        split = Split(list(range(len(combined.clips))), [], [], [], [])
    if material.background:
        combined, split = add_background(
            combined, split, cache, settings.seed, preset.window_s, material.speech
        )
    if material.negatives:
        combined, split = add_negatives(combined, split, material.negatives)
        if settings.negatives_per_epoch:
            split = cap_validation_negatives(
                combined, split, settings.negatives_per_epoch, settings.seed
            )
    needed = ("train", "validation", "test") if fold.test_groups else ("train",)
    for side in needed:
        if not getattr(split, side):
            raise DatasetError(f"the {side} split of fold {fold.name} is empty")
    n_synth = sum(combined.clips[i].synthetic for i in split.train)
    log(
        f"fold {fold.name}: test {describe_groups(fold.test_groups)}, validation "
        f"{describe_groups(fold.validation_groups)}; "
        f"{len(split.train)} train clips ({n_synth} synthetic), {len(split.validation)} "
        f"validation, {len(split.test)} test"
    )
    plan = window_plan(cache.config, preset.window_s, preset.hop_s, preset.mode)
    first = fit(
        combined, split, plan, settings, material.bank, log, fold.name, world, material.rooms
    )
    mined: list[MiningRound] = []
    mining = material.mining
    if mining and mining.rounds and material.negatives and not first.interrupted:
        for number in range(1, mining.rounds + 1):
            combined, split, found = mine_round(
                number,
                first.model,
                combined,
                split,
                material.negatives.parts["train"].files,
                cache,
                plan,
                mining,
                batch_probabilities,
            )
            log(f"fold {fold.name}: {found.describe()} (x{mining.weight}); fitting again")
            mined.append(found)
            first = fit(
                combined, split, plan, settings, material.bank, log,
                f"{fold.name} mined {number}", world, material.rooms,
            )  # fmt: skip
            if first.interrupted:
                break
    model, interrupted = first.model, first.interrupted
    validation_metrics = evaluate_clips(model, combined, split.validation, plan)
    if settings.refit and split.validation and not interrupted and first.best_epoch > 0:
        # Early stopping chose the epoch count; now train on train + validation for
        # that long, so the final model has heard every group but the test one.
        log(f"fold {fold.name}: refitting on train + validation for {first.best_epoch} epochs")
        heard = [i for i in split.validation if not is_validation_negative(combined.clips[i])]
        merged = replace(split, train=split.train + heard, validation=[])
        again = fit(
            combined,
            merged,
            plan,
            replace(settings, epochs=first.best_epoch),
            material.bank,
            log,
            f"{fold.name} refit",
            world,
            material.rooms,
        )
        model, interrupted = again.model, again.interrupted
    real_test = [i for i in split.test if combined.clips[i].label != BACKGROUND]
    background_test = [i for i in split.test if combined.clips[i].label == BACKGROUND]
    metrics: dict[str, Any] = {
        "train": evaluate_clips(model, combined, split.train, plan),
        "validation": validation_metrics,  # of the early-stopped model, before any refit
    }
    # The targets are about the dataset's own clips; background clips are reported apart.
    metrics["test"] = evaluate_clips(model, combined, real_test, plan)
    if plan.mode == "segments" and real_test:
        # Each window on its own: how a stream is labelled segment by segment.
        windows = index_windows(combined, real_test, plan)
        probs = window_probabilities(model, combined, windows, plan)
        truth = combined.label_ids()[windows[:, 0]]
        segments = classification_report(truth, probs.argmax(1), combined.labels)
        metrics["test_segments"] = {k: segments[k] for k in ("n", "accuracy", "macro_f1")}
        metrics["test_segments"]["seconds"] = preset.window_s
    if mined:
        metrics["mining"] = [asdict(r) for r in mined]
    if background_test:
        bg = evaluate_clips(model, combined, background_test, plan)
        metrics["test_background"] = {"n": bg["n"], "recall": bg["accuracy"]}
    baseline = run_baseline(combined, replace(split, test=real_test)) if real_test else None
    if baseline:
        test = metrics["test"]
        log(
            f"fold {fold.name}: test accuracy {test['accuracy']:.4f}, macro-F1 "
            f"{test['macro_f1']:.4f} (baseline {baseline['accuracy']:.4f}) "
            f"in {time.time() - start:.0f} s"
        )
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return FoldResult(
        fold,
        state,
        first.history,
        first.best_epoch,
        interrupted,
        metrics,
        baseline or {},
        time.time() - start,
        first.schedule,
        fold_checks(material, combined, split, first, metrics, baseline),
    )


def window_plan(frontend: FrontendConfig, window_s: float, hop_s: float, mode: str) -> WindowPlan:
    frames = frontend.n_frames(round(window_s * frontend.sample_rate))
    hop = max(1, round(hop_s * frontend.sample_rate / frontend.hop_length))
    return WindowPlan.for_frontend(frames, mode, hop, frontend)


def load_dataset(
    args: argparse.Namespace, frontend: FrontendConfig, log: Log
) -> tuple[DatasetIndex, FeatureCache, ClipSet]:
    """Scan --data, compute (or read cached) features, apply --limit, and say so."""
    index = scan(args.data, args.layout, folds=args.folds, groups=args.groups)
    cache = FeatureCache(frontend, args.cache)
    clips = load_clips(index, cache, progress=not args.quiet)
    if args.limit:
        clips = limit_per_class_and_group(clips, args.limit, args.seed)
    log(
        f"{index.root} ({args.layout}): {len(clips.clips)} clips, {len(clips.labels)} classes, "
        f"{len(clips.groups)} groups; {len(clips.skipped)} skipped"
    )
    for s in clips.skipped:
        log(f"  skipped {s.path}: {s.reason}")
    return index, cache, clips


def prepare(args: argparse.Namespace, preset: Preset, log: Log) -> tuple[Any, Material]:
    """Scan, features, synthetic speakers, noise: everything before the first fold."""
    index, cache, clips = load_dataset(args, preset.frontend, log)
    synth, voice_names = synthetic_speakers(
        clips, args.layout, preset.synth_speakers, cache, args.seed, log
    )
    background = preset.background and words_for(clips.labels, args.layout) is not None
    if args.background is not None:
        background = args.background
    if args.negatives and args.background is False:
        raise ConfigError(
            "--negatives are the background class: they cannot go with --no-background"
        )
    background = background or bool(args.negatives)
    noise_files = sorted(Path(args.noise).rglob("*.wav")) if args.noise else []
    bank = noise_bank(cache, np.random.default_rng(args.seed), 64, 4.0, noise_files)
    plan = window_plan(cache.config, preset.window_s, preset.hop_s, preset.mode)
    negatives = None
    if args.negatives:
        negatives = load_logged_negatives(args, cache, plan, log)
        bank += ambience(negatives, args.seed)
    speech = (
        non_target_speech(clips.labels, args.layout, cache, 240, args.seed) if background else []
    )
    rooms = None
    if preset.augment.reverb_prob > 0:
        rooms = kernel_bank(cache.config, RoomConfig(preset.augment.rt60), ROOMS, args.seed)
        log(f"rooms: {len(rooms)} impulse responses, RT60 {preset.augment.rt60[0]:g}-"
            f"{preset.augment.rt60[1]:g} s ({room_method()})")  # fmt: skip
    material = Material(
        clips,
        synth,
        preset,
        background,
        cache,
        bank,
        speech,
        index.groups_declared,
        negatives,
        rooms,
        mining_settings(args) if negatives else None,
    )
    return (index, voice_names), material


def mining_settings(args: argparse.Namespace) -> MiningSettings:
    return MiningSettings(
        rounds=args.mine_rounds,
        windows=args.mine_windows,
        weight=args.mine_weight,
        per_file=args.mine_per_file,
    ).check()


def load_logged_negatives(
    args: argparse.Namespace, cache: FeatureCache, plan: WindowPlan, log: Log
) -> Negatives:
    """--negatives, split and cut into windows, and what was read said in the log."""
    negatives = load_negatives(
        args.negatives, cache, plan, args.seed, args.negatives_per_file, not args.quiet
    )
    log(negatives.describe())
    for skipped in negatives.skipped:
        log(f"  skipped {skipped.path}: {skipped.reason}")
    return negatives


def ambience(negatives: Negatives, seed: int, count: int = 256) -> list[np.ndarray]:
    """Real ambience to mix under the targets: windows of the negatives' train part."""
    pool = negatives.parts["train"].clips
    rng = np.random.default_rng(seed + 313)
    if not pool:
        return []
    chosen = rng.choice(len(pool), size=min(count, len(pool)), replace=False)
    return [pool[int(i)].features for i in chosen]


def train_command(args: argparse.Namespace) -> int:
    torch = require_torch()
    torch.set_num_threads(args.threads)
    from .distributed import init_world

    world = init_world(args.device)
    log = Log(args.quiet or not world.main)
    if args.fit_all and not args.cv:
        raise ConfigError("--fit-all needs --cv: cross-validation chooses how long to train")
    if args.negatives_per_file < 1:
        raise ConfigError("--negatives-per-file must be at least 1")
    mining_settings(args)  # bad mining options fail before any feature is computed
    if args.background_weight is not None and not args.background_weight > 0:
        raise ConfigError("--background-weight must be a positive number")
    if args.negatives_per_epoch is not None:
        if args.negatives_per_epoch < 1:
            raise ConfigError("--negatives-per-epoch must be at least 1")
        if not args.negatives:
            raise ConfigError("--negatives-per-epoch draws from --negatives: add --negatives DIR")
    if args.mine_rounds and not args.negatives:
        raise ConfigError(
            "--mine-rounds mines the negatives' train part: add --negatives DIR ... "
            "(recordings that hold none of the classes)"
        )
    if args.mine_rounds and args.backbone:
        raise ConfigError(
            "--mine-rounds trains a CNN from scratch again after each round; a head on "
            "--backbone does not mine yet"
        )
    for given, flag in (
        (args.negatives_per_epoch, "--negatives-per-epoch"),
        (args.background_weight, "--background-weight"),
    ):
        if given is not None and args.backbone:
            raise ConfigError(
                f"{flag} shapes the fit of a CNN trained from scratch; not with --backbone "
                "(there --negatives-per-file chooses how much of the negatives a head hears)"
            )
    if args.backbone:
        from .transfer import train_on_backbone

        if args.model:
            raise ConfigError(
                "--model picks a CNN trained from scratch; with --backbone the network is the "
                "pretrained one (--size head, the default, or tiny)"
            )
        return train_on_backbone(args, PRESETS[args.layout], log)
    preset = resolve_preset(args)
    for given, flag in (
        (args.teacher, "--teacher"),
        (args.head_l2, "--head-l2"),
        (args.fine_tune, "--fine-tune"),
        (args.body_lr, "--body-lr"),
        (args.int8_aware, "--int8-aware"),
    ):
        if given is not None:
            raise ConfigError(f"{flag} is for a pretrained network: add --backbone")
    if world.distributed:
        log(f"distributed: {world.size} processes ({world.device}); rank 0 reports")
    (index, voice_names), material = world.main_first(lambda: prepare(args, preset, log))
    clips = material.clips
    folds = plan_folds(clips, args.holdout_group, args.val_group, args.cv, args.seed)
    settings = TrainSettings(
        model=preset.model,
        size=preset.size,
        epochs=args.epochs,
        preset_epochs=preset.epochs,
        min_steps=args.min_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        schedule=args.schedule,
        seed=args.seed,
        augment=preset.augment,
        mixup=preset.mixup,
        dynamic_range=None if args.dynamic_range <= 0 else args.dynamic_range,
        threads=args.threads,
        refit=args.refit,
        negatives_per_epoch=args.negatives_per_epoch,
        background_weight=args.background_weight,
    )
    from .zoo import ModelSpec, build_model, profile

    plan = window_plan(material.cache.config, preset.window_s, preset.hop_s, preset.mode)
    labels = sorted({*clips.labels, BACKGROUND}) if material.background else clips.labels
    spec = ModelSpec(
        settings.model, settings.size, len(labels), (plan.frames, preset.frontend.n_mels)
    )
    prof = profile(build_model(spec), spec.input_shape)
    log(f"model {settings.model}-{settings.size}: {prof.describe()}")
    config = RunConfig(
        model=ModelRecord(
            settings.model,
            settings.size,
            prof.params,
            prof.macs,
            prof.int8_bytes,
            settings.dynamic_range,
            (spec.input_shape[0], spec.input_shape[1]),
        ),
        frontend=preset.frontend,
        labels=tuple(labels),
        background_class=BACKGROUND if material.background else None,
        window=RunWindow(plan.frames, plan.mode, plan.hop, preset.window_s, preset.hop_s),
        dataset=dataset_record(args, index, clips),
        synthetic_speakers=tuple(voice_names),
        seed=args.seed,
        augmentation={
            **settings.augment.to_dict(),
            "mixup": settings.mixup,
            "rooms": room_method() if material.rooms else None,
        },
        training={k: v for k, v in settings.__dict__.items() if k != "augment"},
        distributed={"processes": world.size, "device": world.device},
        negatives=negatives_record(material),
        command="python -m export " + " ".join(shlex.quote(a) for a in args.argv),
    )
    results = []
    summary: dict[str, Any] | None = None
    for fold in folds:
        result = run_fold(material, fold, settings, log, world)
        results.append(result)
        target = args.out / f"fold-{fold.name}" if args.cv else args.out
        if world.main:
            write_run(target, result, config, log)
        if result.interrupted:
            break
    final_checks = results[-1].checks if results else []
    interrupted = bool(results) and results[-1].interrupted
    if args.cv and world.main:
        summary = write_cv_summary(args.out, results, config, log)
        final_checks = merge_checks(results)
    if args.fit_all and not interrupted:
        epochs = final_epochs(results)
        log(
            f"final fit on every group for {epochs} epochs (the median best epoch of the "
            f"{len(results)} folds); its estimate is the cross-validated figure"
        )
        final = run_fold(
            material, Fold("all", [], []), replace(settings, epochs=epochs), log, world
        )
        final.checks = final_checks  # the folds' checks are what tell about this recipe
        interrupted = final.interrupted
        if world.main:
            write_run(args.out, final, config, log, summary)
    if world.main:
        log("")
        for line in checks.format_checks(final_checks):
            log(line)
        log(f"wrote {args.out}")
        log.write(args.out / "train.log")
    world.close()
    return 130 if interrupted else 0


def negatives_record(material: Material) -> dict[str, Any]:
    """The negatives' summary for config.json and the manifest, with the mining
    recipe when it ran (each round's findings are in the fold's metrics.json)."""
    if not material.negatives:
        return {}
    record = material.negatives.summary()
    if material.mining and material.mining.rounds:
        record["mining"] = material.mining.to_dict()
    return record


def dataset_record(args: argparse.Namespace, index: Any, clips: ClipSet) -> DatasetRecord:
    """What the run config says about the data: the scan and the options that shaped it."""
    return DatasetRecord(
        str(index.root),
        args.layout,
        len(clips.clips),
        tuple(clips.groups),
        index.groups_declared,
        args.groups,
        len(clips.skipped),
        None if args.folds is None else tuple(args.folds),
    )


def checked_range(values: list[float], flag: str, lo: float, hi: float) -> tuple[float, float]:
    low, high = values
    if not lo <= low <= high <= hi:
        raise ConfigError(f"{flag} LOW HIGH must satisfy {lo:g} <= LOW <= HIGH <= {hi:g}")
    return (low, high)


def reverb_on(args: argparse.Namespace) -> bool:
    """Rooms are heard when asked for (--reverb), and by default for a detector
    trained with --negatives; --no-reverb turns them off."""
    return bool(args.negatives) if args.reverb is None else args.reverb


def with_room_options(augment: AugmentConfig, args: argparse.Namespace) -> AugmentConfig:
    """`augment` with --gain, --rt60 and --snr applied, each checked."""
    if args.gain is not None:
        if not 0 <= args.gain <= 60:
            raise ConfigError(f"--gain must be between 0 and 60 dB, got {args.gain:g}")
        augment = replace(augment, gain_db=args.gain)
    if args.rt60 is not None:
        augment = replace(augment, rt60=checked_range(args.rt60, "--rt60", 0.05, 3.0))
    if args.snr is not None:
        augment = replace(augment, snr_db=checked_range(args.snr, "--snr", -10.0, 60.0))
    return augment


def resolve_preset(args: argparse.Namespace) -> Preset:
    from .presets import MODELS, SIZES

    preset = PRESETS[args.layout]
    model = args.model or preset.model
    if model not in MODELS:
        raise ConfigError(f"unknown --model '{model}' (choose from {', '.join(MODELS)})")
    size = args.size or (preset.size if model == preset.model else "small")
    if size not in SIZES[model]:
        raise ConfigError(
            f"unknown --size '{size}' for {model} (choose from {', '.join(SIZES[model])})"
        )
    augment = preset.augment if not args.no_augment else AugmentConfig.off()
    if args.no_specaugment:
        augment = replace(augment, time_masks=0, freq_masks=0)
    if args.no_noise:
        augment = replace(augment, noise=False)
    if args.vtlp is not None:
        augment = replace(augment, vtlp=args.vtlp)
    if args.speed is not None:
        augment = replace(augment, speed=args.speed)
    if reverb_on(args) and not args.no_augment:
        augment = replace(augment, reverb_prob=REVERB_SHARE)
    augment = with_room_options(augment, args)
    changes: dict[str, Any] = {"model": model, "size": size, "augment": augment}
    if args.epochs:
        changes["epochs"] = args.epochs
    if args.mixup is not None:
        changes["mixup"] = args.mixup
    if args.no_augment:
        changes["mixup"] = 0.0
    if args.synth_speakers is not None:
        changes["synth_speakers"] = args.synth_speakers
    if args.window:
        changes["window_s"] = args.window
    if args.mode:
        changes["mode"] = args.mode
    if args.hop:
        changes["hop_s"] = args.hop
    if args.n_mels:
        changes["frontend"] = replace(preset.frontend, n_mels=args.n_mels)
    return replace(preset, **changes)


def add_parser(sub: argparse._SubParsersAction, name: str) -> None:
    from .presets import MODELS

    p = sub.add_parser(
        name,
        help="train a compact CNN on a labelled dataset",
        description="Train a compact CNN on log-mel windows from the device frontend, "
        "with augmentation and a group-aware split (no speaker, fold or recording on two "
        "sides). Writes checkpoint.pt, config.json, metrics.json, confusion.png, curves.png, "
        "history.csv and train.log into --out.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/fsdd\n"
        "  python -m export train --data ../shared/data/fsdd --layout fsdd --out runs/cv --cv\n"
        "  python -m export train --data ../shared/data/esc50 --layout esc50 --out runs/esc50 "
        "--holdout-group fold5\n"
        "  python -m export train --data ../shared/data/music_speech --layout folder "
        "--out runs/ms --model dscnn --size small\n"
        "  python -m export train --data my_sounds --layout folder "
        "--groups '{label}/{group}_*.wav' --out runs/mine --cv --fit-all\n"
        "  torchrun --nproc-per-node 4 -m export train ...   (DDP: the same run, N processes)\n"
        "  python -m export train --data ../shared/data/esc50 --layout esc50 "
        "--backbone efficientat-mn04 --out runs/esc50-mn04 --cv --fit-all\n"
        "      (a linear head on a frozen pretrained network: seconds once the embeddings "
        "are cached)\n"
        "  python -m export train --data ../shared/data/esc50 --layout esc50 "
        "--backbone efficientat-mn04 --fine-tune 5 --out runs/esc50-ft --cv --fit-all\n"
        "      (its top 5 stages retrained too: minutes per fold on a CPU)\n"
        "  python -m export train --data ../shared/data/fsdd --layout fsdd "
        "--backbone speech-embedding --negatives ../shared/data/esc50 --out runs/fsdd-se\n"
        "      (spoken keywords: a head on Google's speech embedding; with --negatives a "
        "detector, each clip also heard in rooms)\n"
        "\nThe last lines of the log are the checks: below the baseline, underfitting, still "
        "improving, few clips, no groups. They are also in metrics.json.\n",
    )
    p.add_argument("--data", type=Path, required=True, help="dataset folder")
    p.add_argument("--layout", choices=LAYOUTS, required=True, help="how the folder is organised")
    p.add_argument("--out", type=Path, required=True, help="run directory to write")
    p.add_argument("--model", help=f"model: {', '.join(MODELS)} (default: the layout's preset)")
    p.add_argument(
        "--backbone",
        metavar="NAME_OR_DIR",
        help="train a linear head on the frozen embedding of a pretrained network: a folder "
        "holding its weights, or a name (efficientat-mn04 for sounds, speech-embedding for "
        "spoken keywords) looked up in $EDGE_AUDIO_PRETRAINED, "
        "else ~/.cache/edge-audio/pretrained, then ../shared/pretrained; checked by sha256. "
        "The frontend and window become the network's own.",
    )
    p.add_argument(
        "--head-l2",
        metavar="L2|auto",
        help="--backbone: L2 penalty of the linear head. Default 'auto': chosen per fit "
        "from 1e-4 to 1 by cross-validation over the training groups (never the test "
        "group), which suits a speaker or recording not trained on: leaving one FSDD "
        "speaker out, 95.2%% against 94.6%% with a fixed 1e-3",
    )
    p.add_argument(
        "--fine-tune",
        metavar="N|all",
        help="--backbone: also retrain the top N stages of the network (mn04 has 17; 5 is "
        "a good start on hundreds of clips) or all of them; the stages below stay frozen and "
        "their output is cached. Default: the head only",
    )
    p.add_argument(
        "--body-lr",
        type=float,
        help=f"--fine-tune: peak learning rate of the pretrained stages (default {BODY_LR}, "
        f"{STUDENT_BODY_LR} for a --size tiny student; the head's and new layers' is ten "
        "times it)",
    )
    p.add_argument(
        "--teacher",
        type=Path,
        metavar="RUN_DIR",
        help="--backbone: distil from a trained run of the same backbone and labels (its "
        "outputs are computed once and cached; with --cv, RUN_DIR/fold-NAME teaches fold NAME). "
        "Usually with --size tiny: the network's first 12 stages and a new layer, under 300 KB "
        "as int8",
    )
    p.add_argument(
        "--int8-aware",
        action="store_true",
        default=None,
        help="--fine-tune or --size tiny: the stages that train learn from the frozen stages' "
        "output as the int8 TFLite file computes it as well as from their float output (each "
        "window twice; twice the training time). For a student whose int8 file loses points: "
        "esc50-tiny's post-training int8 lost 0.6 points over four folds with it (5.0 "
        "without, 1.6 after QAT). export quantize gives such a run no QAT unless asked",
    )
    p.add_argument(
        "--size",
        help="size preset: tiny/small/medium/large (model-dependent); with --backbone, head "
        "(a linear head, the default), mlp (a head with one hidden layer) or tiny "
        "(a distillation student)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs, taken as given (default: the preset's, raised until the run has "
        "--min-steps steps; early stopping may end sooner)",
    )
    p.add_argument(
        "--min-steps",
        type=int,
        default=DEFAULT_MIN_STEPS,
        help=f"optimiser steps a run gets at least when --epochs is not given, however small "
        f"the data (default {DEFAULT_MIN_STEPS})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for everything (default 0)")
    p.add_argument(
        "--holdout-group",
        nargs="+",
        metavar="GROUP",
        help="test group(s): a speaker (fsdd), fold (esc50: fold5) or recording",
    )
    p.add_argument(
        "--val-group",
        nargs="+",
        metavar="GROUP",
        help="validation group(s) (default: the fold before the test fold)",
    )
    p.add_argument(
        "--cv",
        action="store_true",
        help="leave-one-group-out (or 5-fold by recording) cross-validation",
    )
    p.add_argument("--folds", type=int, nargs="+", help="esc50: folds to use")
    p.add_argument("--groups", metavar="PATTERN_OR_CSV", help=GROUPS_HELP)
    p.add_argument("--window", type=float, help="model window in seconds")
    p.add_argument("--hop", type=float, help="segment hop in seconds (long clips)")
    p.add_argument(
        "--mode",
        choices=("keyword", "segments"),
        help="how a clip becomes training windows: keyword, one window centred on the "
        "clip's sound (spoken words, wake phrases: a folder of short clips); segments, "
        "windows every --hop along it (long recordings). Default: the layout's "
        "(keyword for fsdd and speech-commands, segments otherwise)",
    )
    p.add_argument("--n-mels", type=int, help="mel bands (default: the layout's preset)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW)")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument(
        "--patience",
        type=int,
        default=10,
        help="early-stopping patience in epochs, at least (the recipe uses a fifth of the "
        "planned epochs when that is more; it never stops in the first half)",
    )
    p.add_argument("--schedule", choices=("onecycle", "cosine"), default="onecycle")
    p.add_argument(
        "--dynamic-range",
        type=float,
        default=80.0,
        help="per-window level normalisation range in dB (0: off)",
    )
    p.add_argument("--mixup", type=float, help="mixup Beta alpha (0: off)")
    p.add_argument("--no-augment", action="store_true", help="turn every augmentation off")
    p.add_argument("--no-specaugment", action="store_true", help="no time/frequency masks")
    p.add_argument("--no-noise", action="store_true", help="no additive background noise")
    p.add_argument(
        "--vtlp",
        type=float,
        help="vocal-tract-length perturbation: mel-axis warp of up to +-this (0.1)",
    )
    p.add_argument("--speed", type=float, help="time stretch of up to +-this (0.15)")
    p.add_argument(
        "--gain",
        type=float,
        metavar="DB",
        help="random level change of up to +-DB (default 6; 0: off). Matters only to a "
        "model that sees absolute level (--dynamic-range 0): per-window peak "
        "normalisation undoes any gain",
    )
    p.add_argument(
        "--reverb",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"hear half of the training windows in one of {ROOMS} simulated rooms "
        "(default: on with --negatives, off otherwise)",
    )
    p.add_argument(
        "--rt60",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="reverberation times of the simulated rooms in seconds (default 0.15 0.9)",
    )
    p.add_argument(
        "--snr",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="SNR range in dB of the background mixed under the clips (default 5 30)",
    )
    p.add_argument(
        "--negatives",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="folders of audio that holds none of the classes (any length, rate or channels; "
        "walked recursively): the background class, hard negatives, and ambience mixed under "
        "the clips. Split by speaker (an index.csv with file,speaker columns in or above "
        "the folder) or by recording: 70%% train, 15%% validation, 15%% calibration "
        "(never trained on: `python -m export calibrate` counts false alarms on it). "
        "Ogg Opus, FLAC and MP3 need the formats extra. Makes any layout a detector",
    )
    p.add_argument(
        "--negatives-per-file",
        type=int,
        default=WINDOWS_PER_FILE,
        metavar="N",
        help=f"at most N windows from each negative file, spread over it "
        f"(default {WINDOWS_PER_FILE})",
    )
    p.add_argument(
        "--negatives-per-epoch",
        type=int,
        metavar="N",
        help="draw N windows afresh each epoch from the negatives' train part, instead of "
        "training on every one every epoch: hours of talk then cost an epoch no more than "
        "N windows, and each window is still heard over the run; early stopping then scores "
        "a fixed subset of the validation negatives in proportion (default: all of them). "
        "Mined windows are always trained on",
    )
    p.add_argument(
        "--background-weight",
        type=float,
        metavar="W",
        help="a detector's loss: each background window weighs W times a class window "
        "(the classes balanced among themselves). By default every class, background "
        "included, weighs the same in total, so with hours of negatives a background "
        "window weighs a twentieth of a class window and the model calls anything unsure "
        "a class; 1 or more makes it say 'nothing here' when unsure",
    )
    defaults = MiningSettings()
    p.add_argument(
        "--mine-rounds",
        type=int,
        default=defaults.rounds,
        metavar="N",
        help="with --negatives: N rounds of hard-negative mining. After each fit the model "
        "scores every window of the negatives' train part as the device slides over them, "
        "and the highest-scoring ones (the false alarms it would raise) join the background, "
        f"weighted, before it fits again (default {defaults.rounds}; each round costs one fit)",
    )
    for flag, name, metavar, text in (
        ("--mine-windows", "windows", "K", "windows a mining round adds"),
        ("--mine-weight", "weight", "W", "times each mined window is trained on per epoch"),
        ("--mine-per-file", "per_file", "M", "at most M mined windows from one recording a round"),
    ):
        default = getattr(defaults, name)
        p.add_argument(
            flag, type=int, default=default, metavar=metavar, help=f"{text} (default {default})"
        )
    p.add_argument("--noise", type=Path, help="folder of noise WAVs for augmentation/background")
    p.add_argument(
        "--speaker-copies",
        type=int,
        metavar="N",
        help="--backbone, a head: N copies of every clip as other voices might say it "
        "(tempo, vocal tract and microphone warped), embedded once and cached (default: 3 for "
        "keyword layouts, 0 otherwise); helps on a speaker never heard",
    )
    p.add_argument(
        "--synth-speakers",
        type=int,
        help="espeak-ng voices added as training-only speakers (keyword layouts)",
    )
    p.add_argument(
        "--background",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add a _background_ class (default: on for keyword layouts)",
    )
    p.add_argument("--limit", type=int, help="at most N clips per class and group (quick runs)")
    p.add_argument("--cache", type=Path, help="feature cache folder (default ~/.cache/edge-audio)")
    p.add_argument(
        "--refit",
        action="store_true",
        help="after early stopping, retrain on train + validation for the best "
        "epoch count (the final model hears every non-test group)",
    )
    p.add_argument(
        "--fit-all",
        action="store_true",
        help="with --cv: after the folds, train on every group for the median best epoch "
        "and write that model to --out (its estimate is the cross-validated figure)",
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the network trains (auto: a GPU when torch sees one)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(run=train_command)
