"""The network at its default input against MONAI's DenseNet121 and ResNet-18, side by side (SPEC §11).

Same input for all (batch 1, the default crop of PreprocessingConfig, 4 channels), CPU, 2 threads:
- forward latency: median of ``--repeats`` (≥ 10) eval forwards after 3 warm-up runs;
- GFLOPs: ``torch.utils.flop_counter.FlopCounterMode`` (counts convolutions and matmuls; a
  multiply-add is 2 FLOPs);
- peak memory: the rise of the process's peak resident set (VmHWM, i.e. what ``ru_maxrss`` reports
  but reset at exec) during one forward, each model in a fresh child process so one model's peak
  cannot hide another's;
- the machine's limit: GFLOP/s of a plain large 3-D convolution (and of a large fp32 matmul); the
  "× limit" column is the measured latency over FLOPs / conv3d throughput;
- training throughput of our network: cases/s of forward + backward + AdamW step at batch 4;
- preprocessing on the SPEC §11 reference case (512×512×160 int16): ``prepare_model_input`` against
  resampling the whole volume first.

Prints a markdown table and writes benchmarks/results/model.json.

    .venv/bin/python benchmarks/bench_model.py [--repeats 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "model.json"
PEERS = ("ours", "densenet121", "resnet18_stride1_stem", "resnet18_stride2_stem")


def build(name: str):
    from monai.networks.nets import DenseNet121, ResNet

    from BreastSubtypeLib.model.network import SpatialMultiTaskNet

    if name == "ours":
        return SpatialMultiTaskNet()
    if name == "densenet121":
        return DenseNet121(spatial_dims=3, in_channels=4, out_channels=4)
    # MONAI's resnet18 = ResNet("basic", [2, 2, 2, 2], [64, 128, 256, 512]); its default stem is a
    # 7³ convolution at stride 1 (full resolution), the costly part; stride 2 is the usual 2-D choice.
    stride = 1 if name == "resnet18_stride1_stem" else 2
    return ResNet(
        "basic",
        [2, 2, 2, 2],
        [64, 128, 256, 512],
        spatial_dims=3,
        n_input_channels=4,
        conv1_t_size=7,
        conv1_t_stride=stride,
        num_classes=4,
    )


def model_inputs(name: str, side: tuple[int, int, int], batch: int = 1, seed: int = 0):
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, *side, generator=generator)
    x[:, 1:] = (x[:, 1:] > 1.0).float()  # mask channels are 0/1 like the real input
    return (x, torch.randn(batch, 2, generator=generator)) if name == "ours" else (x,)


def median_seconds(function, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def forward_flops(network, inputs) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(*inputs)
    return float(counter.get_total_flops())


def memory_child(name: str, side: tuple[int, int, int], threads: int) -> None:
    """In a fresh process: MB by which one forward raises the peak resident set."""
    import torch

    torch.set_num_threads(threads)
    network = build(name).eval()
    inputs = model_inputs(name, side)
    before = peak_resident_kb()
    with torch.no_grad():
        network(*inputs)
    print(json.dumps({"peak_forward_mb": (peak_resident_kb() - before) / 1024.0}))


def peak_resident_kb() -> float:
    """The process's peak resident set: VmHWM on Linux (ru_maxrss survives exec, so a child would
    start with its parent's peak), ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as status:
            return float(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
    except (OSError, StopIteration):
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def peak_forward_mb(name: str, side: tuple[int, int, int], threads: int) -> float:
    command = [
        sys.executable,
        __file__,
        "--memory-child",
        name,
        "--side",
        *map(str, side),
        "--threads",
        str(threads),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return float(json.loads(output.strip().splitlines()[-1])["peak_forward_mb"])


def machine_throughput(repeats: int) -> dict[str, float]:
    """GFLOP/s of a plain large 3-D convolution and of a large fp32 matmul on this machine."""
    import torch

    conv = torch.nn.Conv3d(64, 64, 3, padding=1, bias=False).eval()
    x = torch.randn(1, 64, 48, 48, 48)
    conv_flops = 2 * 27 * 64 * 64 * 48**3
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    with torch.no_grad():
        conv_s = median_seconds(lambda: conv(x), max(3, repeats // 2), warmup=2)
        matmul_s = median_seconds(lambda: a @ b, max(3, repeats // 2), warmup=2)
    return {
        "conv3d_gflops_per_s": conv_flops / conv_s / 1e9,
        "matmul_gflops_per_s": 2 * 2048**3 / matmul_s / 1e9,
    }


def training_cases_per_s(side: tuple[int, int, int], repeats: int, batch: int = 4) -> float:
    import torch
    import torch.nn.functional as F

    from BreastSubtypeLib.model.network import SpatialMultiTaskNet

    torch.manual_seed(0)
    network = SpatialMultiTaskNet().train()
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-3)
    x, scalars = model_inputs("ours", side, batch=batch)
    labels = (torch.rand(batch) > 0.5).float()
    ki67 = torch.rand(batch) * 60

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        out = network(x, scalars)
        loss = sum(F.binary_cross_entropy_with_logits(out[t], labels) for t in ("er", "pr", "her2"))
        loss = loss + F.mse_loss(out["ki67_percent"] / 100, ki67 / 100)
        loss.backward()
        optimiser.step()

    return batch / median_seconds(step, max(3, repeats // 2), warmup=2)


def reference_case():
    """SPEC §11 reference geometry: 512×512×160 int16 at 0.7×0.7×1.1 mm, a 20 mm lesion with its ROIs."""
    import numpy as np
    import SimpleITK as sitk

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4096, size=(160, 512, 512), dtype=np.int16)
    k, j, i = np.ogrid[:160, :512, :512]
    distance_mm = np.sqrt(((k - 80) * 1.1) ** 2 + ((j - 300) * 0.7) ** 2 + ((i - 200) * 0.7) ** 2)
    labels = np.zeros(pixels.shape, np.uint8)
    labels[distance_mm < 15] = 3
    labels[distance_mm < 10] = 2
    labels[distance_mm < 7] = 1
    image, labelmap = sitk.GetImageFromArray(pixels), sitk.GetImageFromArray(labels)
    for item in (image, labelmap):
        item.SetSpacing((0.7, 0.7, 1.1))
    return image, labelmap


def preprocessing_seconds(repeats: int) -> dict[str, float]:
    """Our crop (resample only the crop) vs the naive way (resample the whole volume, then crop)."""
    import SimpleITK as sitk

    from BreastSubtypeLib.model.config import PreprocessingConfig
    from BreastSubtypeLib.preprocessing.crop import prepare_model_input

    image, labelmap = reference_case()
    config = PreprocessingConfig()
    ours = median_seconds(lambda: prepare_model_input(image, labelmap, config), repeats)

    def whole_volume() -> None:
        spacing = config.target_spacing_mm
        size = [int(round(n * s / spacing)) for n, s in zip(image.GetSize(), image.GetSpacing())]
        reference = sitk.Image(size, sitk.sitkUInt8)
        reference.SetSpacing([spacing] * 3)
        resampled = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        sitk.RegionOfInterest(resampled, list(config.crop_size_voxels), [200, 250, 90])

    naive = median_seconds(whole_volume, 3, warmup=1)
    return {"prepare_model_input_s": ours, "whole_volume_resample_then_crop_s": naive}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--side", type=int, nargs=3, default=None, help="input D H W (default: the config's crop)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON (default: %(default)s)")
    parser.add_argument("--memory-child", choices=PEERS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    from BreastSubtypeLib.atomic import write_text_atomic
    from BreastSubtypeLib.model.config import PreprocessingConfig
    from BreastSubtypeLib.model.network import count_parameters

    side = tuple(args.side) if args.side else tuple(reversed(PreprocessingConfig().crop_size_voxels))
    if args.memory_child:
        memory_child(args.memory_child, side, args.threads)
        return 0
    torch.set_num_threads(args.threads)
    repeats = max(args.repeats, 10)
    load_before = os.getloadavg()[0]  # other processes on a shared machine inflate every figure
    machine = machine_throughput(repeats)
    rows = []
    for name in PEERS:
        network = build(name).eval()
        inputs = model_inputs(name, side)
        flops = forward_flops(network, inputs)
        with torch.no_grad():
            seconds = median_seconds(lambda network=network, inputs=inputs: network(*inputs), repeats)
        limit_s = flops / (machine["conv3d_gflops_per_s"] * 1e9)
        rows.append(
            {
                "model": name,
                "parameters": count_parameters(network),
                "gflops": flops / 1e9,
                "forward_s": seconds,
                "times_machine_limit": seconds / limit_s,
                "peak_forward_mb": peak_forward_mb(name, side, args.threads),
            }
        )
        print(f"measured {name}: {seconds:.3f} s", file=sys.stderr)
    training = training_cases_per_s(side, repeats)
    preprocessing = preprocessing_seconds(repeats)

    ours = rows[0]
    lines = [
        f"Input 1×4×{side[0]}×{side[1]}×{side[2]} float32, CPU, {args.threads} threads, median of {repeats} "
        f"(1-min load average {load_before:.1f} at start).",
        "",
        "| model | parameters (M) | GFLOPs | forward (s) | × machine limit | peak forward memory (MB) | vs ours (time) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['parameters'] / 1e6:.2f} | {row['gflops']:.2f} | {row['forward_s']:.3f} | "
            f"{row['times_machine_limit']:.2f} | {row['peak_forward_mb']:.0f} | "
            f"{row['forward_s'] / ours['forward_s']:.1f}× |"
        )
    lines += [
        "",
        f"Machine: plain Conv3d 64→64 3³ on 48³: {machine['conv3d_gflops_per_s']:.1f} GFLOP/s; "
        f"fp32 matmul 2048²: {machine['matmul_gflops_per_s']:.1f} GFLOP/s.",
        f"Training (ours, forward + backward + AdamW, batch 4): {training:.1f} cases/s.",
        f"Preprocessing on the 512×512×160 reference case: prepare_model_input "
        f"{preprocessing['prepare_model_input_s'] * 1000:.0f} ms; resampling the whole volume to "
        f"{PreprocessingConfig().target_spacing_mm} mm first: {preprocessing['whole_volume_resample_then_crop_s']:.2f} s.",
    ]
    print("\n".join(lines))
    result = {
        "command": "python benchmarks/bench_model.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "input_shape": [1, 4, *side],
        "threads": args.threads,
        "repeats": repeats,
        "torch_version": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "machine": machine,
        "models": rows,
        "training_cases_per_s_batch4": training,
        "memory_method": "rise of the peak resident set (VmHWM) during one forward, fresh child process per model",
    }
    write_text_atomic(args.out, json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
