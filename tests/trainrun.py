"""One way for the tests to run `export train` on a small folder dataset."""

from __future__ import annotations

from pathlib import Path


def train_tiny(data: Path, out: Path, cache: Path, *extra: str) -> int:
    """`export train` of the tiny vgg on a folder dataset, in-process."""
    from export.cli import main as export_main

    return export_main(
        [
            "train",
            "--data",
            str(data),
            "--layout",
            "folder",
            "--out",
            str(out),
            "--model",
            "vgg",
            "--size",
            "tiny",
            "--quiet",
            "--cache",
            str(cache),
            *extra,
        ]
    )
