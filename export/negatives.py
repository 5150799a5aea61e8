"""`train --negatives DIR [DIR ...]`: recordings that hold none of the classes.

Any audio files, of any length, rate or channel count, in folders walked
recursively. Each file is cut into model-length windows that become clips of the
background class, so a detector learns what the world sounds like when nobody
says a keyword: kitchens, streets, music, ordinary talk.

Files are split into three parts by a hash of their voice or recording (never by
window, so no voice or recording sits on two sides). Where a folder (or one above
it) holds an `index.csv` with the columns `file` and `speaker` (the layout of
`../shared/data/negatives`), the files of one speaker stay together; files without
a speaker are split by recording:

- train: background clips to learn from, and real ambience to mix under targets;
- validation: background clips that early stopping scores;
- calibration: never trained on nor used to pick an epoch; `python -m export
  calibrate` measures false alarms per hour on it.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_audio.datasets import AUDIO_SUFFIXES, Skipped
from edge_audio.errors import AudioFileError, ConfigError
from edge_audio.windows import WindowPlan, is_silent

from .data import BACKGROUND, Clip, FeatureCache

PARTS = ("train", "validation", "calibration")
# Shares of the recordings in each part. Calibration gets as much as validation:
# false alarms per hour are only as precise as the hours they are counted on.
SHARES = (0.7, 0.15, 0.15)
WINDOWS_PER_FILE = 4  # a sample of each recording's moments, not its first minute
# ESC-50's names are {fold}-{source}-{take}-{target}: takes of one source recording
# must stay together, or a part would hear the other half of its own recording.
_ESC50_NAME = re.compile(r"^\d+-(?P<source>[^-]+)-[A-Z]+-\d+$")


INDEX_NAME = "index.csv"  # file,source,speaker,... beside (or above) the recordings


@dataclass(frozen=True)
class Provenance:
    """What an index says of one file: where it came from and whose voice it is."""

    source: str
    speaker: str  # "" where the index does not know
    licence: str = ""
    text: str = ""  # the transcript, where the index has one


@functools.lru_cache(maxsize=64)
def _read_index(index: Path) -> Mapping[Path, Provenance]:
    """An index.csv's rows by resolved file path; {} for a CSV of another shape."""
    try:
        with index.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"file", "speaker"} <= set(reader.fieldnames or ()):
                return {}
            return {
                (index.parent / row["file"]).resolve(): Provenance(
                    (row.get("source") or "").strip(),
                    (row["speaker"] or "").strip(),
                    (row.get("licence") or "").strip(),
                    (row.get("text") or "").strip(),
                )
                for row in reader
                if row.get("file")
            }
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}


@functools.lru_cache(maxsize=4096)
def _indexes_above(folder: Path) -> tuple[Path, ...]:
    """Every index.csv in `folder` and the folders above it, nearest first."""
    found = [folder / INDEX_NAME] if (folder / INDEX_NAME).is_file() else []
    return (*found, *(_indexes_above(folder.parent) if folder.parent != folder else ()))


def provenance_of(path: Path) -> Provenance | None:
    """The nearest index.csv's row for this file, if any index lists it."""
    resolved = path.resolve()
    for index in _indexes_above(resolved.parent):
        row = _read_index(index).get(resolved)
        if row is not None:
            return row
    return None


def recording_of(path: Path) -> str:
    """What must not be split across parts: the speaker an index names (every file
    of one voice together), the source recording of an ESC-50 clip, the file
    otherwise (its name, so the split does not depend on where the folder lives)."""
    known = provenance_of(path)
    if known is not None and known.speaker:
        return f"speaker:{known.source}:{known.speaker}"
    match = _ESC50_NAME.match(path.stem)
    return f"esc50:{match['source']}" if match else f"{path.parent.name}/{path.name}"


def source_of(path: Path, folder: Path) -> str:
    """The source a file's hours are reported under: the index's `source`, else
    the first folder below the --negatives folder (its own name for loose files)."""
    known = provenance_of(path)
    if known is not None and known.source:
        return known.source
    inner = path.relative_to(folder).parts
    return inner[0] if len(inner) > 1 else folder.name


def group_of(part: str) -> str:
    """The group of a part's clips: how training tells the parts apart later."""
    return f"{BACKGROUND}negatives-{part}"


NEGATIVE_TRAIN_GROUP = group_of("train")  # the windows --negatives-per-epoch draws from
MINED_GROUP = group_of("mined")  # hard negatives (export/mining.py): trained on every epoch


def part_of(path: Path, seed: int = 0, shares: Sequence[float] = SHARES) -> str:
    """The part a file belongs to: a stable hash of its recording and the seed."""
    digest = hashlib.sha256(f"{seed}:{recording_of(path)}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    edges = np.cumsum(shares) / np.sum(shares)
    return PARTS[int(np.searchsorted(edges, u, side="right"))]


def find_audio(folders: Sequence[Path]) -> list[Path]:
    """Every audio file under the folders (recursively), sorted; a folder that is
    missing or holds no audio is an error that names it."""
    return [path for _, path in find_audio_by_folder(folders)]


def find_audio_by_folder(folders: Sequence[Path]) -> list[tuple[Path, Path]]:
    """(folder given, file) for every audio file under the folders, as find_audio."""
    found: list[tuple[Path, Path]] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise ConfigError(f"--negatives {folder}: not a folder")
        files = sorted(
            p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
        )
        if not files:
            raise ConfigError(
                f"--negatives {folder}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it "
                "or below it"
            )
        found.extend((folder, f) for f in files)
    return found


@dataclass
class NegativePart:
    clips: list[Clip] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0  # of audio in the part's files, whether or not every window is used
    # seconds per source (export/negatives.source_of), and per way the part was chosen
    by_source: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    by_speaker_seconds: float = 0.0  # of files whose index named a speaker
    licences: dict[str, str] = field(default_factory=dict)  # source -> what its index says

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def add_file(self, path: Path, source: str, seconds: float) -> None:
        self.files.append(path)
        self.seconds += seconds
        self.by_source[source] += seconds
        if recording_of(path).startswith("speaker:"):
            self.by_speaker_seconds += seconds
        known = provenance_of(path)
        if known is not None and known.licence:
            self.licences[source] = known.licence

    def summary(self) -> dict[str, object]:
        return {
            "files": len(self.files),
            "hours": round(self.hours, 3),
            "windows": len(self.clips),
            "hours_by_source": {k: round(v / 3600, 3) for k, v in sorted(self.by_source.items())},
            "hours_split_by_speaker": round(self.by_speaker_seconds / 3600, 3),
            "licences": dict(sorted(self.licences.items())),
        }


@dataclass
class Negatives:
    parts: dict[str, NegativePart]
    skipped: list[Skipped]
    folders: list[str]
    seed: int
    windows_per_file: int

    def summary(self) -> dict[str, object]:
        """For the run config and the card."""
        return {
            "folders": self.folders,
            "seed": self.seed,
            "shares": dict(zip(PARTS, SHARES, strict=True)),
            "windows_per_file": self.windows_per_file,
            "skipped": len(self.skipped),
            **{part: p.summary() for part, p in self.parts.items()},
        }

    def describe(self) -> str:
        """For the log: each part's size, then the hours of each source."""
        bits = ", ".join(
            f"{p}: {len(v.files)} files, {v.hours:.2f} h, {len(v.clips)} windows"
            for p, v in self.parts.items()
        )
        sources: dict[str, float] = defaultdict(float)
        for part in self.parts.values():
            for source, seconds in part.by_source.items():
                sources[source] += seconds
        by_source = ", ".join(f"{k} {v / 3600:.2f} h" for k, v in sorted(sources.items()))
        speakers = sum(p.by_speaker_seconds for p in self.parts.values()) / 3600
        return (
            f"negatives {bits}; {len(self.skipped)} skipped\n"
            f"negatives by source: {by_source}; {speakers:.2f} h split by speaker "
            "(an index.csv named them), the rest by recording"
        )


def file_windows(features: np.ndarray, plan: WindowPlan, most: int) -> list[np.ndarray]:
    """Up to `most` non-overlapping windows of a file that hold sound, spread evenly
    over it (a long recording gives a sample of its moments, not its first minute)."""
    starts = list(range(0, max(1, features.shape[0] - plan.frames + 1), plan.frames))
    windows = np.stack([plan.cut(features, s) for s in starts])
    sound = np.flatnonzero(~is_silent(windows, plan.silence))
    if sound.size > most:
        sound = sound[np.linspace(0, sound.size - 1, most).round().astype(int)]
    return [windows[i] for i in sound]


def load_negatives(
    folders: Sequence[Path],
    cache: FeatureCache,
    plan: WindowPlan,
    seed: int = 0,
    windows_per_file: int = WINDOWS_PER_FILE,
    progress: bool = True,
) -> Negatives:
    """Features of every negative file, cut into windows, split into the parts.
    Unreadable files are skipped and listed, as the dataset scan does."""
    found = find_audio_by_folder(folders)
    parts = {p: NegativePart() for p in PARTS}
    skipped: list[Skipped] = []
    iterator: Sequence[tuple[Path, Path]] = found
    if progress:
        from tqdm import tqdm

        iterator = tqdm(found, desc="negatives", unit="file", leave=False, disable=None)
    hop_s = cache.config.hop_length / cache.config.sample_rate
    for folder, path in iterator:
        try:
            features = cache.features(path)
        except AudioFileError as exc:
            skipped.append(Skipped(path, exc.reason))
            continue
        if features.shape[0] == 0:
            skipped.append(Skipped(path, "shorter than one analysis window"))
            continue
        name = part_of(path, seed)
        part = parts[name]
        part.add_file(path, source_of(path, Path(folder)), features.shape[0] * hop_s)
        for k, window in enumerate(file_windows(features, plan, windows_per_file)):
            part.clips.append(Clip(window, BACKGROUND, group_of(name), f"{path}#{k}"))
    if not any(p.files for p in parts.values()):
        raise ConfigError("--negatives: none of the files could be read (see the skipped list)")
    return Negatives(parts, skipped, [str(f) for f in folders], seed, windows_per_file)
