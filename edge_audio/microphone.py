"""A microphone as a Source: PyAudio (PortAudio) capture at the device's own
rate, in a callback that never blocks, and the helpers that find the device."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from typing import Any

import numpy as np

from .errors import EdgeAudioError, MissingDependencyError
from .native import quiet_stderr
from .source import CHUNK_FRAMES, DeviceLost


def _pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError:
        raise MissingDependencyError("pyaudio", "mic", "microphone capture") from None
    return pyaudio


def open_pyaudio() -> Any:
    """PyAudio, with PortAudio's probing chatter (ALSA, JACK) kept off the terminal."""
    pyaudio = _pyaudio()
    with quiet_stderr():
        return pyaudio.PyAudio()


def input_devices(pa: Any) -> list[dict[str, Any]]:
    devices = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if info.get("maxInputChannels", 0) > 0:
            devices.append(info)
    return devices


def find_device(pa: Any, wanted: str | None) -> dict[str, Any]:
    devices = input_devices(pa)
    if not devices:
        raise EdgeAudioError("no audio input device found (is a microphone plugged in?)")
    if wanted is None:
        try:
            default: dict[str, Any] = pa.get_default_input_device_info()
            return default
        except OSError:
            return devices[0]
    if wanted.isdigit():
        match = [d for d in devices if d["index"] == int(wanted)]
    else:
        match = [d for d in devices if wanted.lower() in d["name"].lower()]
    if not match:
        names = ", ".join(f"{d['index']}: {d['name']}" for d in devices)
        raise EdgeAudioError(f"no input device matches '{wanted}' (input devices: {names})")
    return match[0]


class MicSource:
    """Capture at the device's native rate (USB microphones often offer only 44.1
    or 48 kHz) in a PortAudio callback that never blocks: chunks go through a
    bounded queue, and when the reader falls behind, chunks are dropped and
    counted rather than stopping the stream."""

    def __init__(
        self,
        device: str | None = None,
        chunk_frames: int = CHUNK_FRAMES,
        queue_chunks: int = 64,
        stall_seconds: float = 3.0,
    ) -> None:
        pyaudio = _pyaudio()
        self.pa = open_pyaudio()
        info = find_device(self.pa, device)
        self.name = info["name"]
        self.rate = int(info["defaultSampleRate"])
        self.channels = max(1, min(int(info["maxInputChannels"]), 2))
        self.queue: queue.Queue[bytes] = queue.Queue(maxsize=queue_chunks)
        self.overflows = 0
        self.dropped_frames = 0
        self.stall_seconds = stall_seconds
        self._overflow_flag = pyaudio.paInputOverflow
        self._continue = pyaudio.paContinue
        try:
            with quiet_stderr():
                self.stream = self.pa.open(
                    format=pyaudio.paFloat32,
                    channels=self.channels,
                    rate=self.rate,
                    input=True,
                    input_device_index=int(info["index"]),
                    frames_per_buffer=chunk_frames,
                    stream_callback=self._callback,
                )
        except OSError as exc:
            self.pa.terminate()
            raise EdgeAudioError(f"cannot open input device '{self.name}': {exc}") from None

    def _callback(
        self, data: bytes, frames: int, time_info: dict[str, float], status: int
    ) -> tuple[None, int]:
        if status & self._overflow_flag:
            self.overflows += 1
        try:
            self.queue.put_nowait(data)
        except queue.Full:
            self.overflows += 1
            self.dropped_frames += frames
        return None, self._continue

    def chunks(self) -> Iterator[np.ndarray]:
        while True:
            try:
                data = self.queue.get(timeout=self.stall_seconds)
            except queue.Empty:
                raise DeviceLost(
                    f"input device '{self.name}' delivered no audio for {self.stall_seconds:g} s"
                ) from None
            frames = np.frombuffer(data, dtype=np.float32).reshape(-1, self.channels)
            yield frames.mean(axis=1) if self.channels > 1 else frames[:, 0]

    def describe(self) -> str:
        return f"listening on '{self.name}' at {self.rate} Hz ({self.channels} ch)"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.stop_stream()
            self.stream.close()
        self.pa.terminate()
