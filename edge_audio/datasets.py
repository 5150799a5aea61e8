"""Dataset layouts -> records (path, label, group).

`group` is what must never be split across train and test: the speaker (fsdd,
speech-commands), the fold (esc50), or the source recording (folder, gtzan,
whose long clips are later cut into windows). Only csv and WAV headers are
read here, so scanning stays light enough for the device side.

A bad file never stops a scan: it is skipped and listed with its reason.

The folder and gtzan layouts know no speakers or sessions, so each file is its
own group unless the user declares groups (`groups=`): a file-name pattern such
as "{label}/{group}_*.wav", or a CSV with the columns file, label, group.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .audio import wav_info
from .errors import AudioFileError, DatasetError

# .opus and .ogg are both Ogg containers: soundfile decodes them (the formats extra).
AUDIO_SUFFIXES = (
    ".wav",
    ".wave",
    ".flac",
    ".ogg",
    ".opus",
    ".mp3",
    ".au",
    ".aiff",
    ".aif",
)
LAYOUTS = ("folder", "esc50", "fsdd", "speech-commands", "gtzan")
# A detector's "nothing here" class: the folder name `record` writes negatives to
# and the label the toolchain trains them as.
BACKGROUND_LABEL = "_background_"
_FSDD_NAME = re.compile(r"^(?P<label>[^_]+)_(?P<speaker>[^_]+)_(?P<take>\d+)$")
NO_GROUPS_NOTE = (
    "no groups declared, so each file is its own group: if one speaker, session or "
    "recording gave several files, they can land on both sides of a split and the figures "
    "will be optimistic (declare them with --groups '{label}/{group}_*.wav' or a CSV of "
    "file,label,group)"
)
GROUP_LAYOUTS = ("folder", "gtzan")
GROUPS_HELP = (
    "folder/gtzan layouts: which clips belong together (a speaker, a session), so that no "
    "group is on both sides of a split: a pattern over paths such as '{label}/{group}_*.wav' "
    "or a CSV with the columns file,label,group (default: each file is its own group)"
)


@dataclass(frozen=True)
class Record:
    path: Path
    label: str
    group: str
    split: str | None = None  # a split fixed by the dataset itself (speech-commands lists)


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class DatasetIndex:
    layout: str
    root: Path
    records: list[Record]
    skipped: list[Skipped] = field(default_factory=list)
    background: list[Path] = field(default_factory=list)  # noise recordings, not a class
    # False when every file is its own group only because nobody said otherwise
    # (folder layouts without --groups): clips of one speaker or session may then
    # sit on both sides of a split, and the figures may be optimistic.
    groups_declared: bool = True

    @property
    def labels(self) -> list[str]:
        return sorted({r.label for r in self.records})

    @property
    def groups(self) -> list[str]:
        return sorted({r.group for r in self.records})

    def summary(self) -> str:
        """Human summary: counts per class and group, then every skipped file."""
        per_label = Counter(r.label for r in self.records)
        lines = [
            f"{self.root} ({self.layout}): {len(self.records)} clips, "
            f"{len(per_label)} classes, {len(self.groups)} groups, {len(self.skipped)} skipped"
        ]
        width = max((len(label) for label in per_label), default=0)
        lines += [f"  {label:<{width}}  {per_label[label]}" for label in self.labels]
        if not self.groups_declared:
            lines.append(f"  note: {NO_GROUPS_NOTE}")
        if self.background:
            lines.append(f"  background recordings: {len(self.background)}")
        lines += [f"  skipped {s.path}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def describe_groups(groups: Sequence[str], shown: int = 3) -> str:
    """Groups for a log line, a card or a plot title: a few named, the rest
    counted, so that 16 held-out recordings do not make a 2 KB line."""
    names = list(groups)
    if len(names) <= shown + 1:
        return ", ".join(names)
    return f"{len(names)} groups ({', '.join(names[:shown])} and {len(names) - shown} more)"


def scan(
    root: str | Path,
    layout: str,
    *,
    folds: Iterable[int] | None = None,
    groups: str | None = None,
    check_files: bool = True,
) -> DatasetIndex:
    """Index a dataset folder. `folds` selects ESC-50 folds; `groups` declares the
    groups of a folder layout (a pattern or a CSV path, see the module doc);
    `check_files` parses each WAV header so that broken files are skipped now, not
    mid-training."""
    root = Path(root)
    if layout not in _SCANNERS:
        raise DatasetError(f"unknown layout '{layout}' (choose from {', '.join(LAYOUTS)})")
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    if folds is not None and layout != "esc50":
        raise DatasetError("--folds applies to the esc50 layout only")
    if groups is not None and layout not in GROUP_LAYOUTS:
        raise DatasetError(
            f"--groups applies to the {' and '.join(GROUP_LAYOUTS)} layouts; {layout} "
            "already knows its groups"
        )
    if layout == "esc50":
        index = _scan_esc50(root, set(folds) if folds is not None else None)
    else:
        index = _SCANNERS[layout](root)
    if groups is not None:
        _declare_groups(index, groups)
    if check_files:
        _drop_unreadable(index)
    if not index.records:
        raise DatasetError(f"{root}: found no usable audio clips for the {layout} layout")
    return index


def _drop_unreadable(index: DatasetIndex) -> None:
    kept = []
    for record in index.records:
        reason = check_header(record.path)
        if reason is None:
            kept.append(record)
        else:
            index.skipped.append(Skipped(record.path, reason))
    index.records = kept


def check_header(path: Path) -> str | None:
    """None when the file looks readable, else the reason it is not."""
    if not path.is_file():
        return "missing"
    if path.suffix.lower() not in (".wav", ".wave"):
        return None  # decoded later through soundfile, which reports its own errors
    try:
        info = wav_info(path)
    except AudioFileError as exc:
        return exc.reason
    return "no samples (zero-length audio)" if info.n_frames == 0 else None


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def _class_folders(root: Path) -> list[Path]:
    """Subfolders that name classes (hidden and _underscore_ folders excluded)."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def _scan_class_folders(root: Path, layout: str) -> DatasetIndex:
    folders = _class_folders(root)
    if not folders:
        raise DatasetError(f"{root}: the {layout} layout needs one subfolder per class, found none")
    records = []
    for folder in folders:
        files = _audio_files(folder)
        if not files:
            raise DatasetError(f"{folder}: class '{folder.name}' has no audio clips")
        # Each file is its own source recording: its windows must stay on one side.
        records += [Record(p, folder.name, f"{folder.name}/{p.stem}") for p in files]
    return DatasetIndex(layout, root, records, groups_declared=False)


def _declare_groups(index: DatasetIndex, groups: str) -> None:
    """Re-group a folder layout's records by a CSV or a file-name pattern."""
    csv_path = Path(groups)
    if groups.lower().endswith(".csv"):
        if not csv_path.is_file() and (index.root / groups).is_file():
            csv_path = index.root / groups
        records, skipped = _groups_from_csv(index, csv_path)
    else:
        records, skipped = _groups_from_pattern(index, groups)
    index.records, index.groups_declared = records, True
    index.skipped.extend(skipped)
    if not records:
        raise DatasetError(f"{index.root}: no clip has a group under --groups {groups!r}")


def group_pattern(pattern: str) -> re.Pattern[str]:
    """'{label}/{group}_*.wav' -> a regex over paths relative to the dataset root:
    {group} (required) and {label} match one path part (the group as short as
    possible), * any run of characters within a part."""
    if "{group}" not in pattern:
        raise DatasetError(f"--groups pattern {pattern!r} must contain {{group}}")
    out = []
    for token in re.split(r"(\{group\}|\{label\}|\*)", pattern):
        if token == "{group}":
            out.append("(?P<group>[^/]+?)")
        elif token == "{label}":
            out.append("(?P<label>[^/]+)")
        elif token == "*":
            out.append("[^/]*")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))


def _groups_from_pattern(index: DatasetIndex, pattern: str) -> tuple[list[Record], list[Skipped]]:
    regex = group_pattern(pattern)
    records, skipped = [], []
    for record in index.records:
        rel = record.path.relative_to(index.root).as_posix()
        # A pattern without a folder part is matched against the file name alone.
        match = regex.fullmatch(rel if "/" in pattern else record.path.name)
        if match is None:
            skipped.append(Skipped(record.path, f"name does not match --groups {pattern!r}"))
        else:
            records.append(Record(record.path, record.label, match["group"], record.split))
    return records, skipped


def _groups_from_csv(index: DatasetIndex, path: Path) -> tuple[list[Record], list[Skipped]]:
    """Rows of file (relative to the dataset root), label, group: the CSV decides
    both. Audio files it does not list are skipped and named."""
    if not path.is_file():
        raise DatasetError(f"--groups {path}: no such CSV file")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"file", "label", "group"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path}: missing columns {sorted(missing)} (need file,label,group)")
        rows = list(reader)
    listed: dict[Path, Record] = {}
    skipped = []
    for n, row in enumerate(rows, start=2):
        file, label, group = (str(row[k] or "").strip() for k in ("file", "label", "group"))
        target = index.root / file
        if not (file and label and group):
            raise DatasetError(f"{path}, line {n}: file, label and group must all be given")
        if not target.is_file():
            skipped.append(Skipped(target, f"listed in {path.name} but missing"))
            continue
        listed[target.resolve()] = Record(target, label, group)
    for record in index.records:
        if record.path.resolve() not in listed:
            skipped.append(Skipped(record.path, f"not listed in {path.name}"))
    return list(listed.values()), skipped


def _scan_folder(root: Path) -> DatasetIndex:
    return _scan_class_folders(root, "folder")


def _scan_gtzan(root: Path) -> DatasetIndex:
    for name in ("genres", "genres_original"):
        if (root / name).is_dir():
            index = _scan_class_folders(root / name, "gtzan")
            return DatasetIndex("gtzan", root, index.records, groups_declared=False)
    return _scan_class_folders(root, "gtzan")


def _scan_fsdd(root: Path) -> DatasetIndex:
    folder = root / "recordings" if (root / "recordings").is_dir() else root
    files = _audio_files(folder)
    if not files:
        raise DatasetError(
            f"{root}: the fsdd layout needs {{digit}}_{{speaker}}_{{take}}.wav files "
            "here or in recordings/, found none"
        )
    index = DatasetIndex("fsdd", root, [])
    for path in files:
        match = _FSDD_NAME.match(path.stem)
        if match is None:
            index.skipped.append(Skipped(path, "name is not {label}_{speaker}_{take}.wav"))
        else:
            index.records.append(Record(path, match["label"], match["speaker"]))
    return index


def _scan_esc50(root: Path, folds: set[int] | None) -> DatasetIndex:
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise DatasetError(f"{root}: the esc50 layout needs meta/esc50.csv and audio/")
    index = DatasetIndex("esc50", root, [])
    with meta.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {"filename", "fold", "category"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{meta}: missing columns {sorted(missing)}")
        for row in reader:
            path = root / "audio" / row["filename"]
            try:
                fold = int(row["fold"])
            except ValueError:
                index.skipped.append(Skipped(path, f"bad fold {row['fold']!r} in esc50.csv"))
                continue
            if folds is None or fold in folds:
                index.records.append(Record(path, row["category"], f"fold{fold}"))
    if folds is not None:
        present = {int(r.group[4:]) for r in index.records}
        absent = sorted(folds - present)
        if absent:
            raise DatasetError(f"{meta}: no clips in fold(s) {absent}")
    return index


def _scan_speech_commands(root: Path) -> DatasetIndex:
    def read_list(name: str) -> set[str]:
        path = root / name
        return set(path.read_text().split()) if path.is_file() else set()

    validation, testing = read_list("validation_list.txt"), read_list("testing_list.txt")
    folders = _class_folders(root)
    if not folders:
        raise DatasetError(f"{root}: the speech-commands layout needs one folder per word")
    index = DatasetIndex("speech-commands", root, [])
    for folder in folders:
        for path in _audio_files(folder):
            rel = f"{folder.name}/{path.name}"
            split = "validation" if rel in validation else "test" if rel in testing else "train"
            speaker = path.stem.split("_nohash_")[0]
            index.records.append(Record(path, folder.name, speaker, split))
    noise = root / "_background_noise_"
    if noise.is_dir():
        index.background = _audio_files(noise)
    return index


_SCANNERS: dict[str, Callable[[Path], DatasetIndex]] = {
    "folder": _scan_folder,
    "fsdd": _scan_fsdd,
    "speech-commands": _scan_speech_commands,
    "gtzan": _scan_gtzan,
    "esc50": lambda root: _scan_esc50(root, None),
}
