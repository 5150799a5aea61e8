"""Scoring a stream's decisions against a truth CSV (start,end,label in seconds)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import EdgeAudioError

ONSET_TOLERANCE_S = 0.5


class TruthError(EdgeAudioError):
    """A truth CSV that cannot be used; the message names the file and row."""


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    label: str


def read_truth(path: str | Path) -> list[Segment]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TruthError(f"{path}: cannot read truth CSV: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames is None or not {"start", "end", "label"} <= set(reader.fieldnames):
        raise TruthError(f"{path}: truth CSV needs the columns start,end,label")
    segments = []
    for row_number, row in enumerate(reader, start=2):
        try:
            start, end = float(row["start"]), float(row["end"])
        except (TypeError, ValueError):
            raise TruthError(f"{path}, row {row_number}: start and end must be seconds") from None
        label = (row["label"] or "").strip()
        if not label or start < 0 or end < start:
            raise TruthError(f"{path}, row {row_number}: need 0 <= start <= end and a label")
        segments.append(Segment(start, end, label))
    if not segments:
        raise TruthError(f"{path}: truth CSV has no rows")
    return sorted(segments, key=lambda s: s.start)


def check_truth_labels(truth: list[Segment], labels: list[str], model: str) -> None:
    """Every truth label must be one the model can say: an unknown one would only
    ever count as a miss, and the score would be 0 without saying why."""
    unknown = sorted({s.label for s in truth} - set(labels))
    if unknown:
        raise TruthError(
            f"truth label(s) {unknown} are not labels of {model} (it knows: "
            f"{', '.join(labels)}): rename them in the truth CSV"
        )


def precision_recall_f1(hits: int, detected: int, true_events: int) -> tuple[float, float, float]:
    """Event precision, recall and F1 from counts (also summed over many streams)."""
    precision = hits / detected if detected else 0.0
    recall = hits / true_events if true_events else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def score_events(
    events: list[dict[str, Any]],
    truth: list[Segment],
    duration_s: float,
    tolerance_s: float = ONSET_TOLERANCE_S,
) -> dict[str, Any]:
    """An event matches a truth segment of the same label when its span overlaps
    the segment widened by `tolerance_s` on each side; one match per segment."""
    matched: set[int] = set()
    hits = 0
    for event in sorted(events, key=lambda e: e["end"]):
        for i, seg in enumerate(truth):
            if i in matched or seg.label != event["label"]:
                continue
            if event["start"] <= seg.end + tolerance_s and event["end"] >= seg.start - tolerance_s:
                matched.add(i)
                hits += 1
                break
    false_alarms = len(events) - hits
    precision, recall, f1 = precision_recall_f1(hits, len(events), len(truth))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "true_events": len(truth),
        "detected": len(events),
        "matched": hits,
        "false_alarms": false_alarms,
        "false_alarms_per_hour": false_alarms / (duration_s / 3600) if duration_s else 0.0,
        "miss_rate": 1 - recall,
        "onset_tolerance_s": tolerance_s,
    }


def score_labels(
    changes: list[dict[str, Any]], truth: list[Segment], duration_s: float, step_s: float = 0.01
) -> dict[str, Any]:
    """Fraction of the time (where truth says something) that the label track is right."""
    right = total = 0
    t = 0.0
    while t < duration_s:
        expected = next((s.label for s in truth if s.start <= t < s.end), None)
        current = None
        for change in changes:
            if change["time"] <= t:
                current = change["label"]
        if expected is not None:
            total += 1
            right += current == expected
        t += step_s
    return {"time_correct": right / total if total else 0.0, "scored_seconds": total * step_s}
