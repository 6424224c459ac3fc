"""GPU detection and the memory check before a CUDA run, without importing torch.

Importing torch in Slicer's own process to ask about the GPU would initialise CUDA there (a
context of several hundred MB held for the whole session, and a broken torch would break the
panel). ``nvidia-smi`` answers in milliseconds and needs neither; without it the check says
"unknown" and the child process decides (``--device auto`` falls back to the CPU itself).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

try:
    from slicer.i18n import tr as _
except ImportError:  # outside Slicer (tests)

    def _(text: str) -> str:
        return text


# What a prediction needs on the GPU: the CUDA context (~300-500 MB), the network and its
# activations on the crop, and the Grad-CAM passes, with margin. The demo network is small
# (2 GFLOPs at 48^3); a registered model may declare more in its card one day.
REQUIRED_FREE_MB = 1536


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    free_mb: int
    total_mb: int


def parse_nvidia_smi(text: str) -> list[Gpu]:
    """Rows of ``nvidia-smi --query-gpu=index,name,memory.free,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        parts = [part.strip() for part in line.split(",")]
        if len(parts) < 4:
            continue
        try:
            index, free_mb, total_mb = int(parts[0]), int(float(parts[-2])), int(float(parts[-1]))
        except ValueError:
            continue
        gpus.append(Gpu(index, ",".join(parts[1:-2]), free_mb, total_mb))
    return gpus


def visible_gpu(gpus: list[Gpu], cuda_visible_devices: str | None) -> Gpu | None:
    """The GPU torch calls ``cuda:0``: the first of ``CUDA_VISIBLE_DEVICES`` when it lists indices."""
    if not gpus:
        return None
    if cuda_visible_devices is None:
        return gpus[0]
    first = cuda_visible_devices.split(",")[0].strip()
    if first == "" or first == "-1":
        return None  # CUDA hidden on purpose
    if first.isdigit():
        return next((gpu for gpu in gpus if gpu.index == int(first)), None)
    return gpus[0]  # a GPU UUID: nvidia-smi indices cannot be matched; the first is the usual case


def detect_gpu(timeout_s: float = 3.0) -> Gpu | None:
    """The GPU a CUDA run would use, or None (no NVIDIA driver, or CUDA hidden)."""
    executable = shutil.which("nvidia-smi")
    if executable is None:
        return None
    try:
        out = subprocess.run(
            [executable, "--query-gpu=index,name,memory.free,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return visible_gpu(parse_nvidia_smi(out), os.environ.get("CUDA_VISIBLE_DEVICES"))


@dataclass(frozen=True)
class DeviceDecision:
    device: str  # what the child process is asked for: "auto", "cuda" or "cpu"
    message: str  # for the status line; empty when nothing needs saying


class GpuMemoryError(RuntimeError):
    """The GPU was chosen explicitly and has too little free memory."""


def decide_device(requested: str, gpu: Gpu | None, required_mb: int = REQUIRED_FREE_MB) -> DeviceDecision:
    """Check the GPU before a CUDA run: Auto falls back to the CPU with a message, GPU refuses clearly."""
    if requested == "cpu":
        return DeviceDecision("cpu", "")
    if gpu is None:
        if requested == "cuda":
            return DeviceDecision("cuda", "")  # no nvidia-smi: the child checks and says it plainly
        return DeviceDecision("auto", "")
    if gpu.free_mb >= required_mb:
        return DeviceDecision("cuda", _("Running on {name}.").format(name=gpu.name))
    text = _(
        "{name} has {free} MB free; a prediction needs about {required} MB (other programs hold the rest)."
    ).format(name=gpu.name, free=gpu.free_mb, required=required_mb)
    if requested == "cuda":
        raise GpuMemoryError(text + " " + _("Close them, or choose the CPU as device."))
    return DeviceDecision("cpu", text + " " + _("Running on the CPU instead."))
