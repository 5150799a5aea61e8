"""Reading one field of a JSON document with one clear error: shared by the
bundle manifest (edge_audio/manifest.py) and the toolchain's run config
(export/run_config.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def require(
    data: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    where: str,
    error: type[Exception],
    document: str,
) -> Any:
    """`data[key]` if present and of `kind`, else `error` naming `document`,
    the path `where` (e.g. "window.") and the key. A bool is not a number here,
    though Python counts it as an int."""
    if key not in data:
        raise error(f"{document} has no '{where}{key}'")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise error(f"{document} '{where}{key}' has the wrong type")
    return value
