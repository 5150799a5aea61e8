#!/usr/bin/env bash
# Lint (ruff, mypy), then the whole test suite. pytest's exit 5 (no tests collected) is a failure:
# a suite that silently runs nothing must never pass.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m ruff check . || exit 1
"$PY" -m ruff format --check . || exit 1
# Types over the whole tree (strict on edge_audio/; see [tool.mypy] in pyproject.toml).
"$PY" -m mypy || exit 1
"$PY" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run-tests: pytest collected no tests; failing on purpose" >&2
  exit 1
fi
exit "$rc"
