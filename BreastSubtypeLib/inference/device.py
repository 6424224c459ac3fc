"""Device choice: ``auto`` = CUDA, then Apple MPS, then CPU; and THE precision rule.

Predictions (inference, and training's evaluation, which must give the same figures) run in fp16
autocast on a GPU and in float32 on the CPU. Training steps use fp16 only on CUDA, where the loss
can be scaled (MPS has no float64 for the gradient scaler), so an MPS training step is float32.

>>> select_device("cpu").type, mixed_precision(select_device("cpu"))
('cpu', False)
"""

from __future__ import annotations

import contextlib

from BreastSubtypeLib.errors import BadInputError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def select_device(requested: str = "auto"):
    """A ``torch.device`` for ``requested``; asking for an absent GPU is the user's error, said plainly."""
    import torch

    name = str(requested).lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise BadInputError(f"Unknown device {requested!r}; expected one of {', '.join(DEVICE_CHOICES)}.")
    if kind == "cuda" and not torch.cuda.is_available():
        raise BadInputError(
            "Device 'cuda' was requested but no CUDA GPU is available; use --device auto or cpu."
        )
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise BadInputError(
            "Device 'mps' was requested but Apple MPS is not available; use --device auto or cpu."
        )
    return torch.device(name)


def mixed_precision(device, *, training: bool = False) -> bool:
    """Whether fp16 autocast applies on ``device`` (see the module docstring)."""
    return device.type == "cuda" or (device.type == "mps" and not training)


def autocast_context(device, *, training: bool = False):
    """fp16 autocast where ``mixed_precision``, else a no-op (bf16 on CPU is slower here and changes results)."""
    import torch

    if mixed_precision(device, training=training):
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def make_deterministic(device) -> None:
    """Same input, same device → same numbers: no autotuned kernels, deterministic algorithms."""
    import torch

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


@contextlib.contextmanager
def single_case_cpu_threads(device):
    """One intra-op thread for the batch-1 crop network on the CPU, restored afterwards.

    Measured on the 2-core machine (demo model, 48^3 crop, forward + 4 Grad-CAM passes): 20 ms on
    one thread, 0.4-1.2 s on two while another process held a core (OpenMP threads wait on each
    other); the tensors are too small for a second thread to pay off even when the cores are idle.
    """
    import torch

    if device.type != "cpu":
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
