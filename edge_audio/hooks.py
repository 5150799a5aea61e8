"""`--on-event CMD`: run a command for each decision, outside the audio loop.

A worker thread takes decisions from a bounded queue and runs the command with
the decision's JSON on its standard input. A slow or failing command never
stalls capture: when the queue is full the decision is dropped, and failures
and drops are counted for the summary."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import threading
from typing import Any


class CommandHook:
    def __init__(self, command: str, queue_size: int = 64, timeout_s: float = 30.0) -> None:
        self.command = command
        self.timeout_s = timeout_s
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self.runs = 0
        self.failures = 0
        self.dropped = 0
        self.worker = threading.Thread(target=self._work, name="on-event", daemon=True)
        self.worker.start()

    def __call__(self, decision: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(decision)
        except queue.Full:
            self.dropped += 1

    def _work(self) -> None:
        while (decision := self.queue.get()) is not None:
            self.runs += 1
            try:
                result = subprocess.run(
                    self.command,
                    shell=True,
                    input=json.dumps(decision),
                    text=True,
                    capture_output=True,
                    timeout=self.timeout_s,
                )
                self.failures += result.returncode != 0
            except (OSError, subprocess.SubprocessError):
                self.failures += 1

    def close(self, wait_s: float = 10.0) -> dict[str, int]:
        """Let queued commands finish (up to `wait_s`), then report the counts."""
        with contextlib.suppress(queue.Full):
            self.queue.put(None, timeout=wait_s)
        self.worker.join(wait_s)
        return {"runs": self.runs, "failures": self.failures, "dropped": self.dropped}
