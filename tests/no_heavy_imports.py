"""Run an edge-audio command with torch, onnx and tensorflow made unimportable.

    python tests/no_heavy_imports.py edge_audio.cli ARGS...

Exits 97 if anything tried to import a blocked package; otherwise the command's
own exit code. `onnxruntime` is allowed: it is a device runtime, not `onnx`."""

from __future__ import annotations

import importlib
import importlib.abc
import sys

BLOCKED = ("torch", "onnx", "tensorflow", "onnxscript", "litert_torch", "librosa")
attempts: list[str] = []


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ImportError(f"{name} is blocked: the device side must not import it")
        return None


def main() -> int:
    sys.meta_path.insert(0, Blocker())
    module, args = sys.argv[1], sys.argv[2:]
    code = 0
    try:
        code = int(importlib.import_module(module).main(args) or 0)
    except SystemExit as exc:
        code = int(exc.code or 0)
    if attempts:
        print(f"blocked imports attempted: {sorted(set(attempts))}", file=sys.stderr)
        return 97
    return code


if __name__ == "__main__":
    sys.exit(main())
