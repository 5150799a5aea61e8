from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.is_dir():
        reason = f"needs the real recordings in {path} (../shared/data/{name} is absent)"
        if os.environ.get("EDGE_AUDIO_REQUIRE_SHARED"):
            pytest.fail(reason + ", and EDGE_AUDIO_REQUIRE_SHARED is set")
        pytest.skip(reason)
    return path


def shared_pretrained(name: str, weights: str) -> Path:
    """Folder of a pretrained network in ../shared/pretrained, or skip saying why."""
    folder = (REPO.parent / "shared" / "pretrained" / name).resolve()
    if not (folder / weights).is_file():
        reason = f"needs the pretrained weights in {folder} (../shared/pretrained is absent)"
        if os.environ.get("EDGE_AUDIO_REQUIRE_SHARED"):
            pytest.fail(reason + ", and EDGE_AUDIO_REQUIRE_SHARED is set")
        pytest.skip(reason)
    return folder


# The device lane (scripts/run-device-tests.sh) runs the tests of the device side
# in a venv with only what a board installs (numpy, scipy, ai-edge-litert) plus
# pytest: these modules need the toolchain, a reference library, the old
# tflite-runtime venv or a sound server, and run in the full lane instead.
DEVICE_LANE = os.environ.get("EDGE_AUDIO_DEVICE_LANE") == "1"
FULL_LANE_ONLY = {
    "test_train.py",  # torch
    "test_recipe.py",  # torch
    "test_threshold.py",  # the export toolchain
    "test_negatives.py",  # the export toolchain
    "test_mining.py",  # the export toolchain (torch)
    "test_room.py",  # the export toolchain (pyroomacoustics)
    "test_calibrate.py",  # the export toolchain
    "test_bundle.py",  # builds a bundle with torch and litert-torch
    "test_int8_sensitivity.py",  # torch and litert-torch (a toolchain benchmark)
    "test_pretrained.py",  # torch and the pretrained weights
    "test_speech_embedding.py",  # torch, onnx and the pretrained weights
    "test_heads.py",  # torch (the heads are fitted with it)
    "test_frontend_reference.py",  # librosa
    "test_vad.py",  # onnxruntime and Silero VAD's model (an optional part of a board)
    "test_tflite_runtime.py",  # the numpy<2 tflite-runtime venv
    "test_listen_mic.py",  # pyaudio (portaudio19-dev) and PulseAudio
}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if DEVICE_LANE and collection_path.name in FULL_LANE_ONLY:
        return True
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """In the device lane a skip is a failure: a device test that cannot run on
    the device install is exactly what the lane is there to find."""
    outcome = yield
    report = outcome.get_result()
    if DEVICE_LANE and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"skipped in the device lane: {report.longrepr}"
