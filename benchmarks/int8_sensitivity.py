"""Where does a run lose accuracy in int8? Post-training quantisation as
`export quantize` makes the int8 TFLite file (litert-torch's PT2E quantizer),
simulated in torch and scored on the run's held-out clips:

    python benchmarks/int8_sensitivity.py RUN_DIR [--calibration 256 1024] [--chunk 10]

- for each calibration size: the accuracy of the whole int8 graph;
- at the first size: the same graph with one chunk of its quantised tensors
  (in graph order, --chunk at a time) left in float. A chunk that wins back
  points is where int8 rounding hurts; if no chunk does, the loss is spread
  over the network and no single layer can be spared. --chunk 1 scores each
  tensor on its own.

The torch simulation is close to, but not the same as, the TFLite file
(ESC-50 fold 3 of esc50-tiny: 82.0% here, 79.5% as TFLite). It prints a
table; it asserts nothing.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from edge_audio.windows import normalise  # noqa: E402
from export.trained_run import load_data, load_run  # noqa: E402
from export.verify import clip_predictions  # noqa: E402


def quantised_tensors(graph: Any) -> list[Any]:
    """The graph's activation quantize nodes, in graph order."""
    return [
        node
        for node in graph.graph.nodes
        if node.op == "call_function"
        and "quantize_per_tensor" in str(node.target)
        and "dequantize" not in str(node.target)
    ]


def keep_float(graph: Any, chunk: list[int]) -> Any:
    """A copy of a converted PT2E graph whose quantize nodes at `chunk` (and
    their dequantize partners) are bypassed: those tensors stay float."""
    kept = copy.deepcopy(graph)
    nodes = quantised_tensors(kept)
    for i in chunk:
        for dequantize in list(nodes[i].users):
            dequantize.replace_all_uses_with(nodes[i].args[0])
    kept.graph.eliminate_dead_code()
    kept.recompile()
    return kept


def simulated_int8(model: Any, example: Any, calibration: np.ndarray) -> Any:
    """PT2E post-training quantisation of `model` in torch, calibrated as the
    int8 TFLite file is (any batch size, for speed)."""
    import torch
    from torchao.quantization.pt2e import quantize_pt2e

    from export.to_tflite import int8_quantizer

    batch = torch.export.Dim("batch", min=1, max=256)
    exported = torch.export.export(model, (example,), dynamic_shapes=({0: batch},)).module()
    prepared = quantize_pt2e.prepare_pt2e(exported, int8_quantizer())
    with torch.no_grad():
        for start in range(0, len(calibration), 32):
            prepared(torch.from_numpy(calibration[start : start + 32, None]))
    return quantize_pt2e.convert_pt2e(prepared, fold_quantize=False)


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run directory with a held-out group")
    parser.add_argument("--calibration", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--chunk", type=int, default=10, help="tensors kept float at a time")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.chunk < 1 or min(args.calibration) < 1:
        parser.error("--chunk and every --calibration size must be at least 1")
    torch.set_num_threads(args.threads)
    run = load_run(args.run_dir)
    if not run.config.test_groups:
        parser.error(f"{args.run_dir} is a final fit: no held-out clips to score on")
    first, *others = args.calibration
    calibration, held, _ = load_data(run, None, None, first, 0)
    windows = normalise(held.windows, run.model.dynamic_range, run.config.model.normalisation)
    x = torch.from_numpy(windows[:, None].astype(np.float32))

    def accuracy(model: Any) -> float:
        with torch.no_grad():
            logits = torch.cat([model(x[i : i + 64]) for i in range(0, len(x), 64)])
        probs = torch.softmax(logits, 1).numpy()
        return float((clip_predictions(probs, held) == held.truth).mean())

    print(f"{run.root}: {held.truth.size} held-out clips; float {accuracy(run.model):.2%}")
    print("| int8 graph | calibration windows | accuracy |\n|---|---|---|")
    graph = simulated_int8(run.model, x[:2], calibration)
    print(f"| all tensors int8 | {len(calibration)} | {accuracy(graph):.2%} |", flush=True)
    for size in others:  # the held-out clips are the same; only the calibration differs
        more = load_data(run, None, None, size, 0)[0]
        score = accuracy(simulated_int8(run.model, x[:2], more))
        print(f"| all tensors int8 | {len(more)} | {score:.2%} |", flush=True)
    names = [node.args[0].name for node in quantised_tensors(graph)]
    print(f"\n{len(names)} quantised tensors; calibrated on {len(calibration)} windows")
    print("| left in float | accuracy |\n|---|---|")
    for start in range(0, len(names), args.chunk):
        chunk = list(range(start, min(len(names), start + args.chunk)))
        label = f"{start}-{chunk[-1]}: {names[chunk[0]]} .. {names[chunk[-1]]}"
        print(f"| {label} | {accuracy(keep_float(graph, chunk)):.2%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
