"""A compact fingerprint of the files a model was trained on.

`evaluate` uses it to warn when the clips it scores were in the training data:
a figure measured on training clips says nothing about new speakers or rooms.
Each file is reduced to the first 32 bits of the SHA-256 of its bytes (its
content, so a renamed or moved copy still matches); the sorted values are
stored as base64 in the manifest, 4 bytes a file (about 13 KB for 2,500 clips).
With n files stored, an unrelated file matches by chance with probability
n / 2^32: under one in a million for the datasets this kit trains on.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ALGORITHM = "sha256-prefix32"


def file_key(path: Path) -> int:
    """The 32-bit key of a file's bytes."""
    return content_key(Path(path).read_bytes())


def content_key(data: bytes) -> int:
    return int.from_bytes(hashlib.sha256(data).digest()[:4], "big")


@dataclass(frozen=True)
class TrainingDigest:
    keys: np.ndarray  # sorted uint32

    @classmethod
    def of_files(cls, paths: Iterable[Path]) -> TrainingDigest:
        return cls.of_keys(file_key(p) for p in paths)

    @classmethod
    def of_keys(cls, keys: Iterable[int]) -> TrainingDigest:
        return cls(np.unique(np.fromiter(keys, dtype=np.uint32)))

    def __len__(self) -> int:
        return int(self.keys.size)

    def contains(self, key: int) -> bool:
        i = int(np.searchsorted(self.keys, np.uint32(key)))
        return i < self.keys.size and int(self.keys[i]) == key

    def to_dict(self) -> dict[str, Any]:
        data = self.keys.astype(">u4").tobytes()
        return {
            "algorithm": ALGORITHM,
            "count": len(self),
            "data": base64.b64encode(data).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TrainingDigest:
        """Raises ValueError when the entry is not a digest this version reads."""
        if not isinstance(data, dict) or data.get("algorithm") != ALGORITHM:
            raise ValueError(f"training-file digest must use {ALGORITHM}")
        raw = base64.b64decode(str(data.get("data", "")), validate=True)
        if len(raw) % 4:
            raise ValueError("training-file digest data is not a whole number of keys")
        keys = np.frombuffer(raw, dtype=">u4").astype(np.uint32)
        if int(data.get("count", -1)) != keys.size:
            raise ValueError("training-file digest count does not match its data")
        return cls(np.sort(keys))
