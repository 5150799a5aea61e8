"""`edge-audio bench`: latency, CPU and memory of every artefact of a bundle,
beside the pipeline people usually write (librosa on the whole window at every
stride + the torch model in eager mode), measured in one run.

Each artefact is measured in a fresh child process, so its peak RSS is what a
device process that imports, loads and runs that backend needs, and one
runtime's import never inflates another's figure. The parent only orchestrates:
it never imports an interpreter itself. The baseline child lives in
`export.bench_baseline` (it needs torch and librosa, which the device side never
imports) and is skipped with a note when they are not installed.

Stages, each timed over `runs` calls after `warmup` calls, at the model's rate:
- frontend: the streaming log-mel of one stride of new audio;
- inference: one window through the backend (normalise, quantise, invoke, softmax);
- decision: smoothing and the event detector or label tracker;
and the whole loop (`StreamEngine` fed microphone-sized chunks) for CPU per
second of audio and the real-time factor. Every child runs `rounds` times,
interleaved with the baseline's, so a noisy spell on a shared host cannot bias
one side of a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .child import child_env
from .errors import ConfigError, EdgeAudioError
from .meter import peak_rss_mb

BASELINE_SKIPPED = 3  # exit code of a baseline child that lacks torch or librosa


@dataclass(frozen=True)
class BenchConfig:
    runs: int = 1000  # timed calls per stage
    warmup: int = 50  # untimed calls first (allocations, caches, lazy init)
    loop_seconds: float = 120.0  # audio fed through the whole loop
    cold_starts: int = 3  # fresh processes for the cold-start median
    threads: int = 1
    # Every artefact and the baseline are measured this many times, interleaved:
    # on a shared machine a noisy spell hits one child and not the next, so the
    # loop-CPU ratio is the median of ratios paired within a round.
    rounds: int = 3

    def __post_init__(self) -> None:
        if self.runs < 10 or self.warmup < 0 or self.loop_seconds <= 0 or self.cold_starts < 1:
            raise ConfigError("bench needs runs >= 10, warmup >= 0, loop seconds > 0")
        if self.rounds < 1:
            raise ConfigError(f"bench needs rounds >= 1, got {self.rounds}")


# ---------------------------------------------------------------- measurement helpers


def stats_ms(seconds: Sequence[float] | np.ndarray) -> dict[str, float]:
    data = np.asarray(seconds, dtype=np.float64) * 1e3
    return {f"p{q}": round(float(np.percentile(data, q)), 5) for q in (50, 90, 99)}


def time_calls(call: Callable[[int], object], runs: int, warmup: int) -> np.ndarray:
    """Seconds per call of `call(i)` for i in range(runs), after `warmup` calls."""
    for i in range(warmup):
        call(i)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call(i)
        times[i] = time.perf_counter() - start
    return times


def stride_samples(bundle: Any) -> int:
    from .stream import StreamConfig

    stride: int = round(StreamConfig.for_bundle(bundle).stride_s * bundle.frontend.sample_rate)
    return stride


def loop_chunks(samples: np.ndarray, seconds: float, rate: int, chunk: int) -> Iterator[np.ndarray]:
    """`seconds` of audio in microphone-sized chunks, the recording repeated."""
    total = round(seconds * rate)
    fed = 0
    while fed < total:
        start = fed % samples.size
        piece = samples[start : start + min(chunk, total - fed)]
        fed += piece.size
        yield piece


# ---------------------------------------------------------------- child: one artefact


def measure_artefact(
    bundle_dir: Path, artefact: str, audio: Path, config: BenchConfig
) -> dict[str, Any]:
    """Every per-stage figure of one artefact; runs inside a fresh child process."""
    from .audio import read_wav
    from .backends import load_backend
    from .bundle import load_bundle
    from .deciders import Decider
    from .frontend import LogMel, StreamingLogMel
    from .source import CHUNK_FRAMES
    from .stream import StreamConfig, StreamEngine

    bundle = load_bundle(bundle_dir)
    fmt, precision = artefact.split("-")
    backend = load_backend(bundle, fmt, precision, config.threads)
    samples, rate = read_wav(audio)  # already at the model's rate (the parent saw to it)
    stride = stride_samples(bundle)

    streaming = StreamingLogMel(bundle.frontend)
    pieces = [samples[s : s + stride] for s in range(0, samples.size - stride + 1, stride)]
    frontend = time_calls(
        lambda i: streaming.push(pieces[i % len(pieces)]), config.runs, config.warmup
    )

    features = LogMel(bundle.frontend)(samples)
    frames = bundle.input_shape[2]
    hop = stride // bundle.frontend.hop_length or 1
    windows = [features[s : s + frames] for s in range(0, len(features) - frames + 1, hop)]
    probs = [backend.probabilities(w)[0] for w in windows]
    inference = time_calls(
        lambda i: backend.probabilities(windows[i % len(windows)]), config.runs, config.warmup
    )

    decider = Decider(bundle, StreamConfig.for_bundle(bundle))
    span = bundle.window_seconds
    decision = time_calls(
        lambda i: decider.decide(probs[i % len(probs)], i * span, (i + 1) * span),
        config.runs,
        config.warmup,
    )

    engine = StreamEngine(bundle, backend, rate)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for chunk in loop_chunks(samples, config.loop_seconds, rate, CHUNK_FRAMES):
        engine.feed(chunk)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return stage_report(
        (frontend, inference, decision), (wall, cpu), config, engine.windows, backend.runtime
    )


def stage_report(
    stages: tuple[np.ndarray, np.ndarray, np.ndarray],
    loop: tuple[float, float],
    config: BenchConfig,
    windows: int,
    runtime: str,
) -> dict[str, Any]:
    """One artefact's (or the baseline's) figures: per-stage percentiles, and the
    whole loop's wall and CPU time per second of audio."""
    (frontend, inference, decision), (wall, cpu) = stages, loop
    return {
        "frontend_ms": stats_ms(frontend),
        "inference_ms": stats_ms(inference),
        "decision_ms": stats_ms(decision),
        "rtf": round(wall / config.loop_seconds, 6),
        "cpu_percent": round(100 * cpu / config.loop_seconds, 4),
        "loop_windows": windows,
        "runtime": runtime,
        "peak_rss_mb": peak_rss_mb(),
    }


def first_result(bundle_dir: Path, artefact: str, audio: Path) -> None:
    """Cold start: import, load, and stream until the first window is scored."""
    from .audio import read_wav
    from .backends import load_backend
    from .bundle import load_bundle
    from .source import CHUNK_FRAMES
    from .stream import StreamEngine

    bundle = load_bundle(bundle_dir)
    fmt, precision = artefact.split("-")
    engine = StreamEngine(bundle, load_backend(bundle, fmt, precision), bundle.frontend.sample_rate)
    samples, rate = read_wav(audio)
    for chunk in loop_chunks(samples, 3600, rate, CHUNK_FRAMES):
        engine.feed(chunk)
        if engine.windows:
            return


def peak_macs_per_s(n: int = 1024, repeats: int = 5) -> float:
    """Multiply-accumulates per second of a large float32 matrix multiply on one
    core: the roof that a model's achieved MAC/s is compared with."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return n**3 / best


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# ---------------------------------------------------------------- parent


def run_child(
    args: list[str], timeout: float = 900, extra_env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=child_env(extra_env),
        timeout=timeout,
    )
    return done.returncode, done.stdout, done.stderr


def child_json(module: str, args: list[str]) -> dict[str, Any]:
    code, out, err = run_child(["-m", module, *args])
    if code == BASELINE_SKIPPED:
        return {"skipped": err.strip().splitlines()[-1] if err.strip() else "skipped"}
    if code != 0:
        tail = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
        raise EdgeAudioError(f"bench child {module} {' '.join(args)} failed: {tail}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def cold_start_ms(module: str, args: list[str], repeats: int) -> float | None:
    """Median wall time from process start to the first result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        code, _, _ = run_child(["-m", module, "first", *args])
        if code != 0:
            return None
        times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1e3, 1)


def peak_env() -> dict[str, str]:
    """OpenBLAS picks its AVX2 kernel on some AVX-512 CPUs (AMD Zen 4), which
    would halve the roof that XNNPACK's AVX-512 kernels are compared with."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    return {"OPENBLAS_CORETYPE": "SKYLAKEX"} if " avx512f" in flags else {}


def machine_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        fields = dict(
            line.split(":", 1)
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if ":" in line
        )
        fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
        cpu = fields.get("model name") or fields.get("hardware") or fields.get("model") or cpu
    except OSError:
        pass
    packages = {}
    for name in (
        "numpy",
        "scipy",
        "ai-edge-litert",
        "tflite-runtime",
        "onnxruntime",
        "torch",
        "librosa",
    ):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    ram_mb = None
    with contextlib.suppress(ValueError, OSError):
        ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {
        "cpu": cpu,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "ram_mb": ram_mb,
        "python": platform.python_version(),
        "packages": packages,
    }


def prepare_audio(bundle: Any, audio: Path, workdir: Path) -> Path:
    """The bench audio at the model's rate, written once so that the children
    never import the offline resampler (SciPy's signal module costs ~75 MB)."""
    from .audio import load_audio, write_wav

    samples, _ = load_audio(audio, bundle.frontend.sample_rate, allow_silent=True)
    path = workdir / f"{bundle.name}-{bundle.frontend.sample_rate}.wav"
    write_wav(path, samples, bundle.frontend.sample_rate, bits=-32)
    return path


def bench_bundle(
    bundle_dir: Path,
    audio: Path,
    config: BenchConfig,
    workdir: Path,
    baseline: bool = True,
    progress: Callable[[str], None] = lambda line: None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    from .backends import available
    from .bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    wav = prepare_audio(bundle, audio, workdir)
    model = bundle.manifest.model
    params, macs = model.get("params"), model.get("macs")
    common = [
        "--bundle",
        str(bundle.root),
        "--audio",
        str(wav),
        "--runs",
        str(config.runs),
        "--warmup",
        str(config.warmup),
        "--loop-seconds",
        str(config.loop_seconds),
        "--threads",
        str(config.threads),
    ]
    runtimes = available()
    names = []
    for name, artefact in sorted(bundle.artefacts.items()):
        if runtimes[artefact.format] is None:
            progress(f"{bundle.name} {name}: skipped (no {artefact.format} runtime installed)")
        else:
            names.append(name)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    base_rounds: list[dict[str, Any]] = []
    for r in range(config.rounds):
        tag = f" (round {r + 1}/{config.rounds})" if config.rounds > 1 else ""
        for name in names:
            progress(f"{bundle.name} {name}{tag} ...")
            measured = child_json("edge_audio.bench", ["measure", "--artefact", name, *common])
            rounds[name].append(measured)
        if baseline and not any("skipped" in b for b in base_rounds):
            progress(f"{bundle.name} baseline (librosa + torch eager){tag} ...")
            base_rounds.append(child_json("export.bench_baseline", ["measure", *common]))

    rows = []
    for name in names:
        progress(f"{bundle.name} {name}: cold start ...")
        row = {"model": bundle.name, "name": name, "size_bytes": bundle.artefacts[name].size}
        row |= {"params": params, "macs": macs} | merge_rounds(rounds[name])
        row["cold_start_ms"] = cold_start_ms(
            "edge_audio.bench", ["--artefact", name, *common], config.cold_starts
        )
        rows.append(row)
    base: dict[str, Any] | None = None
    if baseline:
        base = {
            "model": bundle.name,
            "name": "baseline: librosa + torch eager fp32",
        }
        base |= {"params": params, "macs": macs}
        if "skipped" in base_rounds[-1]:
            base["skipped"] = base_rounds[-1]["skipped"]
        else:
            base |= merge_rounds(base_rounds)
            progress(f"{bundle.name} baseline: cold start ...")
            base["cold_start_ms"] = cold_start_ms(
                "export.bench_baseline", common, config.cold_starts
            )
    return rows, base


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure as its median over the rounds (stage percentiles one by one),
    plus each round's loop CPU, to pair with the baseline's round by round."""

    def median(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            return {key: median([v[key] for v in values]) for key in first}
        if isinstance(first, (int, float)) and not isinstance(first, bool):
            return type(first)(np.median(values))
        return first  # labels such as the runtime's name are the same every round

    merged = {key: median([r[key] for r in rounds]) for key in rounds[0]}
    return merged | {"loop_cpu_rounds": [r["cpu_percent"] for r in rounds]}


def add_ratios(row: dict[str, Any], base: dict[str, Any] | None, peak: float) -> None:
    """Achieved MAC/s against the measured peak, and every figure as a ratio to
    the baseline measured in the same run (baseline / edge-audio: > 1 is better)."""
    if row.get("macs"):
        p50 = row["inference_ms"]["p50"] / 1e3
        row["macs_per_s"] = round(row["macs"] / p50)
        row["fraction_of_peak"] = round(row["macs"] / p50 / peak, 4)
    if base is None or "skipped" in base:
        row["speedup_vs_baseline"] = None
        return

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 2) if a and b else None

    base_cpu, edge_cpu = base.get("loop_cpu_rounds", []), row.get("loop_cpu_rounds", [])
    paired = [b / e for b, e in zip(base_cpu, edge_cpu, strict=True) if e]
    if paired:  # the median of ratios measured back to back, round by round
        row["speedup_vs_baseline"] = round(float(np.median(paired)), 2)
        row["speedup_range"] = [round(min(paired), 2), round(max(paired), 2)]
    else:
        row["speedup_vs_baseline"] = ratio(base["cpu_percent"], row["cpu_percent"])
    row["ratios_vs_baseline"] = {
        "loop_cpu": row["speedup_vs_baseline"],
        "frontend_p50": ratio(base["frontend_ms"]["p50"], row["frontend_ms"]["p50"]),
        "inference_p50": ratio(base["inference_ms"]["p50"], row["inference_ms"]["p50"]),
        "cold_start": ratio(base.get("cold_start_ms"), row.get("cold_start_ms")),
        "peak_rss": ratio(base["peak_rss_mb"], row["peak_rss_mb"]),
    }


def run_bench(
    bundles: Sequence[Path],
    audio: Path | None = None,
    config: BenchConfig | None = None,
    baseline: bool = True,
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    config = config or BenchConfig()
    if audio is None:
        from .shipped import demo_recording

        audio = demo_recording()
    progress("peak MAC/s of one core (1024 x 1024 float32 matmul) ...")
    code, out, err = run_child(["-m", "edge_audio.bench", "peak"], extra_env=peak_env())
    if code != 0:
        raise EdgeAudioError(f"bench: the peak measurement failed: {err.strip()[-200:]}")
    peak = float(out.strip())
    artefacts, baselines = [], []
    with tempfile.TemporaryDirectory(prefix="edge-audio-bench-") as tmp:
        for bundle_dir in bundles:
            rows, base = bench_bundle(
                Path(bundle_dir), audio, config, Path(tmp), baseline, progress
            )
            for row in rows:
                add_ratios(row, base, peak)
            if base is not None:
                if "skipped" not in base:
                    add_ratios(base, None, peak)
                    base["speedup_vs_baseline"] = 1.0
                baselines.append(base)
            artefacts.extend(rows)
    return {
        "machine": machine_info(),
        "config": asdict(config) | {"audio": str(audio)},
        "peak_macs_per_s": round(peak),
        "artefacts": artefacts,
        "baseline": baselines,
    }


# ---------------------------------------------------------------- reports


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# edge-audio bench: {m['cpu']}, {m['cores']} cores, Python {m['python']}",
        "",
        f"{report['config']['runs']} timed runs per stage after "
        f"{report['config']['warmup']} warm-up, one thread; the loop is "
        f"{report['config']['loop_seconds']:g} s of audio. Ratios are baseline / "
        "edge-audio, measured in the same run (higher is better); each artefact and "
        f"the baseline were measured {report['config'].get('rounds', 1)} times, "
        "interleaved: the loop CPU ratio is the median of the ratios paired round by "
        "round (range in brackets), every other figure the median over the rounds. "
        f"Peak of one core: {report['peak_macs_per_s'] / 1e9:.1f} GMAC/s, a float32 "
        "matmul: int8 kernels (e.g. AVX-512 VNNI, Arm dot-product) can pass 100% of it.",
        "",
        "| model | artefact | size KB | frontend p50/p99 ms | inference p50/p90/p99 ms "
        "| decision p50 ms | loop CPU % of a core | RTF | cold start ms | peak RSS MB "
        "| % of peak MAC/s | loop CPU vs baseline |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = [*report["artefacts"], *report["baseline"]]
    for r in sorted(rows, key=lambda r: r["model"]):
        if "skipped" in r:
            lines.append(f"| {r['model']} | {r['name']} | skipped: {r['skipped']} |" + " |" * 9)
            continue
        f, i = r["frontend_ms"], r["inference_ms"]
        size = f"{r['size_bytes'] / 1024:.1f}" if r.get("size_bytes") else "-"
        peak = f"{100 * r['fraction_of_peak']:.2f}" if r.get("fraction_of_peak") else "-"
        speed = r.get("speedup_vs_baseline")
        spread = r.get("speedup_range")
        speed_text = "-" if speed is None else f"{speed:.1f}x"
        if spread and spread[0] != spread[1]:
            speed_text += f" ({spread[0]:.1f}-{spread[1]:.1f})"
        lines.append(
            f"| {r['model']} | {r['name']} | {size} | {f['p50']:.4f} / {f['p99']:.4f} "
            f"| {i['p50']:.3f} / {i['p90']:.3f} / {i['p99']:.3f} "
            f"| {r['decision_ms']['p50']:.4f} | {r['cpu_percent']:.3f} | {r['rtf']:.5f} "
            f"| {_fmt(r.get('cold_start_ms'), 4)} | {r['peak_rss_mb']:.1f} | {peak} "
            f"| {speed_text} |"
        )
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> bool:
    """Latency per stage per artefact (p50 bars, p99 whiskers, log scale),
    baseline included. Needs matplotlib (a desktop extra); False without it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in [*report["artefacts"], *report["baseline"]] if "skipped" not in r]
    models = sorted({r["model"] for r in rows})
    stages = (
        ("frontend_ms", "frontend / stride"),
        ("inference_ms", "inference / window"),
        ("decision_ms", "decision / window"),
        ("loop", "whole loop: CPU ms per s of audio"),
    )
    fig, axes = plt.subplots(1, len(models), figsize=(5.5 * len(models), 4.8), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = sorted(
            (r for r in rows if r["model"] == model), key=lambda r: r["name"].startswith("baseline")
        )
        x = np.arange(len(mine))
        width = 0.2
        for k, (key, label) in enumerate(stages):
            if key == "loop":  # CPU per second of audio: 10 x the percentage of a core
                p50 = np.array([10 * r["cpu_percent"] for r in mine])
                err = None
            else:
                p50 = np.array([r[key]["p50"] for r in mine])
                err = [np.zeros_like(p50), np.array([r[key]["p99"] for r in mine]) - p50]
            ax.bar(x + (k - 1.5) * width, p50, width, label=label, yerr=err, capsize=2)
        ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([r["name"].split(":")[0] for r in mine], rotation=25, ha="right")
        ax.set_ylabel("milliseconds (p50 bar, p99 whisker; log scale)")
        ax.set_title(model)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend(loc="upper left", fontsize=8)
    fig.suptitle(f"edge-audio latency per stage, 1 thread, {report['machine']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write_reports(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "bench.json", out / "bench.md"]
    written[0].write_text(json.dumps(report, indent=2) + "\n")
    written[1].write_text(markdown(report))
    if chart(report, out / "bench.png"):
        written.append(out / "bench.png")
    return written


# ---------------------------------------------------------------- child entry point


def _child_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge_audio.bench")
    parser.add_argument("mode", choices=("measure", "first", "peak"))
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--artefact")
    parser.add_argument("--audio", type=Path)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--loop-seconds", type=float, default=120.0)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def child_main(argv: Sequence[str] | None = None) -> None:
    args = _child_parser().parse_args(argv)
    if args.mode == "peak":
        print(peak_macs_per_s())
        return
    if args.mode == "first":
        first_result(args.bundle, args.artefact, args.audio)
        return
    config = BenchConfig(args.runs, args.warmup, args.loop_seconds, threads=args.threads)
    print(json.dumps(measure_artefact(args.bundle, args.artefact, args.audio, config)))


if __name__ == "__main__":
    child_main()
