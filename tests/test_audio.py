from __future__ import annotations

import builtins
import struct

import numpy as np
import pytest

from edge_audio.audio import load_audio, read_wav, resample, wav_info, write_wav
from edge_audio.errors import AudioFileError

from .wavgen import chunk, fmt_chunk, pcm_bytes, riff, tone, write_corpus


@pytest.mark.parametrize(
    "bits, tolerance", [(8, 1 / 100), (16, 1e-4), (24, 1e-6), (32, 1e-8), (-32, 1e-7), (-64, 1e-7)]
)
@pytest.mark.parametrize("extensible", [False, True])
def test_every_encoding_decodes_to_the_same_float_signal(tmp_path, bits, tolerance, extensible):
    x = tone(1600)
    tag = 3 if bits < 0 else 1
    blob = riff(
        fmt_chunk(tag, 1, 16000, abs(bits), extensible=extensible),
        chunk(b"data", pcm_bytes(x[:, None], bits)),
    )
    path = tmp_path / "x.wav"
    path.write_bytes(blob)
    samples, rate = read_wav(path)
    assert rate == 16000
    assert samples.dtype == np.float32 and samples.shape == x.shape
    assert np.abs(samples - x).max() < tolerance
    assert np.abs(samples).max() <= 1.0


def test_8bit_is_unsigned_with_128_as_zero(tmp_path):
    path = tmp_path / "u8.wav"
    path.write_bytes(riff(fmt_chunk(1, 1, 8000, 8), chunk(b"data", bytes([128, 255, 0, 128]))))
    samples, _ = read_wav(path)
    np.testing.assert_allclose(samples, [0.0, 127 / 128, -1.0, 0.0])


def test_24bit_negative_values_keep_their_sign(tmp_path):
    raw = struct.pack("<i", -(2**23))[:3] + struct.pack("<i", 2**23 - 1)[:3]
    path = tmp_path / "s24.wav"
    path.write_bytes(riff(fmt_chunk(1, 1, 16000, 24), chunk(b"data", raw)))
    samples, _ = read_wav(path)
    np.testing.assert_allclose(samples, [-1.0, (2**23 - 1) / 2**23], rtol=1e-6)


def test_multichannel_is_mixed_down_to_mono(tmp_path):
    left, right = tone(800, amp=0.5), np.zeros(800, np.float32)
    path = tmp_path / "stereo.wav"
    write_wav(path, np.stack([left, right], axis=1), 16000, bits=-32)
    samples, _ = read_wav(path)
    np.testing.assert_allclose(samples, left / 2, atol=1e-7)
    assert wav_info(path).channels == 2


def test_odd_sized_chunk_before_data_is_skipped_with_its_pad_byte(tmp_path):
    x = tone(160)
    blob = riff(
        fmt_chunk(1, 1, 16000, 16),
        chunk(b"LIST", b"abc"),
        chunk(b"data", pcm_bytes(x[:, None], 16)),
    )
    path = tmp_path / "list.wav"
    path.write_bytes(blob)
    samples, _ = read_wav(path)
    assert samples.size == 160


def test_float_samples_beyond_full_scale_are_clipped(tmp_path):
    path = tmp_path / "loud.wav"
    write_wav(path, np.array([2.0, -3.0, 0.5]), 16000, bits=-32)
    samples, _ = read_wav(path)
    np.testing.assert_allclose(samples, [1.0, -1.0, 0.5])


@pytest.mark.parametrize("bits", [8, 16, 24, 32, -32, -64])
def test_write_then_read_round_trip(tmp_path, bits):
    x = tone(1000, amp=0.7)
    write_wav(tmp_path / "r.wav", x, 22050, bits=bits)
    samples, rate = read_wav(tmp_path / "r.wav")
    assert rate == 22050
    assert np.abs(samples - x).max() < (1 / 100 if bits == 8 else 1e-4)


def test_write_wav_rejects_unknown_depth(tmp_path):
    with pytest.raises(ValueError, match="bits must be"):
        write_wav(tmp_path / "x.wav", tone(), 16000, bits=12)


@pytest.mark.parametrize("src", [8000, 22050, 44100, 48000])
def test_resample_to_16k_keeps_a_tone_and_the_duration(tmp_path, src):
    x = tone(src, rate=src, freq=1000.0)  # one second
    path = tmp_path / f"{src}.wav"
    write_wav(path, x, src)
    samples, rate = load_audio(path, 16000)
    assert rate == 16000 and samples.size == 16000 and samples.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    assert abs(np.argmax(spectrum) - 1000) <= 1  # 1 Hz bins
    assert abs(np.sqrt(np.mean(samples[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_resample_is_identity_at_the_same_rate():
    x = tone()
    assert resample(x, 16000, 16000) is x


def test_resample_rejects_nonpositive_rates():
    with pytest.raises(ValueError, match="positive"):
        resample(tone(), 0, 16000)


def test_malformed_corpus_gives_clear_typed_errors(tmp_path):
    corpus = write_corpus(tmp_path / "bad")
    assert len(corpus) >= 20
    for path, fragment in corpus.items():
        with pytest.raises(AudioFileError) as info:
            load_audio(path)
        message = str(info.value)
        assert str(path) in message, message
        assert fragment in message, f"{path.name}: {message!r} lacks {fragment!r}"


def test_huge_declared_size_allocates_nothing_big(tmp_path):
    blob = riff(fmt_chunk(1, 1, 16000, 16), chunk(b"data", b"\x00\x01" * 4, declared=2**32 - 2))
    path = tmp_path / "huge.wav"
    path.write_bytes(blob)
    import tracemalloc

    tracemalloc.start()
    with pytest.raises(AudioFileError, match="declares 4294967294 bytes"):
        load_audio(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 1_000_000


def test_silence_is_allowed_when_asked(tmp_path):
    path = tmp_path / "silent.wav"
    write_wav(path, np.zeros(1600), 16000)
    with pytest.raises(AudioFileError, match="silence"):
        load_audio(path)
    samples, _ = load_audio(path, allow_silent=True)
    assert samples.size == 1600 and not samples.any()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(AudioFileError, match="cannot open"):
        load_audio(tmp_path / "nope.wav")


def test_flac_reads_through_soundfile(tmp_path):
    soundfile = pytest.importorskip("soundfile")
    x = tone(4410, rate=44100)
    soundfile.write(tmp_path / "x.flac", x, 44100)
    samples, rate = load_audio(tmp_path / "x.flac", 16000)
    assert rate == 16000 and samples.size == 1600


@pytest.mark.parametrize(
    "name, head, kind",
    [("x.flac", b"fLaC\x00\x00\x00\x22", "FLAC"), ("x.opus", b"OggS\x00\x02", "Ogg")],
)
def test_compressed_audio_without_soundfile_says_what_to_install(
    tmp_path, monkeypatch, name, head, kind
):
    (tmp_path / name).write_bytes(head + b"\x00" * 40)
    real_import = builtins.__import__

    def no_soundfile(name, *args, **kwargs):
        if name == "soundfile":
            raise ImportError("blocked for the test")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_soundfile)
    with pytest.raises(AudioFileError, match=rf"{kind} audio needs the soundfile package"):
        load_audio(tmp_path / name)
    with pytest.raises(AudioFileError, match=r"pip install 'edge-audio\[formats\]'"):
        load_audio(tmp_path / name)


def test_corrupt_flac_with_soundfile_is_a_clear_error(tmp_path):
    pytest.importorskip("soundfile")
    (tmp_path / "x.flac").write_bytes(b"fLaC" + b"\x00" * 10)
    with pytest.raises(AudioFileError, match="soundfile could not read it"):
        load_audio(tmp_path / "x.flac")
