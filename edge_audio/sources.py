"""Audio sources for the stream: chunks of float32 samples at the source's own
rate. A file is replayed in the chunk size a microphone delivers, so the
simulation runs exactly the device path."""

from __future__ import annotations

import contextlib
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .audio import WavInfo, iter_wav, load_audio, wav_info
from .errors import AudioFileError, EdgeAudioError, MissingDependencyError
from .native import quiet_stderr

CHUNK_FRAMES = 1024  # what a USB microphone's driver typically hands over per read


class FileSource:
    """A recording replayed in microphone-sized chunks. WAV is read from disk chunk
    by chunk (memory stays flat however long the file); other formats are decoded
    whole through soundfile."""

    def __init__(
        self, path: str | Path, chunk_frames: int = CHUNK_FRAMES, realtime: bool = False
    ) -> None:
        self.path = Path(path)
        self.chunk_frames = chunk_frames
        self.realtime = realtime
        self.overflows = 0  # a file never overflows; the field mirrors a microphone's
        self.wav: WavInfo | None = None
        self.samples: np.ndarray | None = None
        if _is_riff(self.path):
            self.wav = wav_info(self.path)
            if self.wav.n_frames == 0:
                raise AudioFileError(self.path, "no samples (zero-length audio)")
            self.rate, self.n_frames = self.wav.sample_rate, self.wav.n_frames
        else:
            self.samples, self.rate = load_audio(self.path, None, allow_silent=True)
            self.n_frames = self.samples.size

    @property
    def duration(self) -> float:
        return self.n_frames / self.rate

    def _raw_chunks(self) -> Iterator[np.ndarray]:
        if self.wav is not None:
            yield from iter_wav(self.wav, self.chunk_frames)
        else:
            assert self.samples is not None
            for i in range(0, self.samples.size, self.chunk_frames):
                yield self.samples[i : i + self.chunk_frames]

    def chunks(self) -> Iterator[np.ndarray]:
        start, played = time.monotonic(), 0
        for chunk in self._raw_chunks():
            played += chunk.size
            if self.realtime:  # pace to the wall clock, as a microphone would
                time.sleep(max(0.0, start + played / self.rate - time.monotonic()))
            yield chunk


def _is_riff(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"RIFF"
    except OSError as exc:
        raise AudioFileError(path, f"cannot open: {exc.strerror or exc}") from None


class DeviceLost(Exception):
    """The input device stopped delivering audio (unplugged, server gone)."""


def _pyaudio():
    try:
        import pyaudio
    except ImportError:
        raise MissingDependencyError("pyaudio", "mic", "microphone capture") from None
    return pyaudio


def open_pyaudio():
    """PyAudio, with PortAudio's probing chatter (ALSA, JACK) kept off the terminal."""
    pyaudio = _pyaudio()
    with quiet_stderr():
        return pyaudio.PyAudio()


def input_devices(pa) -> list[dict]:
    devices = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if info.get("maxInputChannels", 0) > 0:
            devices.append(info)
    return devices


def find_device(pa, wanted: str | None) -> dict:
    devices = input_devices(pa)
    if not devices:
        raise EdgeAudioError("no audio input device found (is a microphone plugged in?)")
    if wanted is None:
        try:
            return pa.get_default_input_device_info()
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

    def _callback(self, data: bytes, frames: int, time_info: dict, status: int):
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

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stream.stop_stream()
            self.stream.close()
        self.pa.terminate()
