"""One way for the tests to import a script that is not in a package
(benchmarks/, scripts/) as a module."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from .conftest import REPO


def load_script(relative: str) -> ModuleType:
    """The script at `relative` (to the repository root), imported by path."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader, f"{path} cannot be imported"
    module = importlib.util.module_from_spec(spec)
    # registered first, as an import would: a dataclass looks its module up there
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
