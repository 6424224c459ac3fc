"""Device choice: ``auto`` = CUDA, then Apple MPS, then CPU. Mixed precision on GPU only."""

from __future__ import annotations

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


def autocast_context(device):
    """fp16 autocast on CUDA/MPS, a no-op on CPU (bf16 on CPU is slower here and changes results)."""
    import contextlib

    import torch

    if device.type in ("cuda", "mps"):
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def make_deterministic(device) -> None:
    """Same input, same device → same numbers: no autotuned kernels, deterministic algorithms."""
    import torch

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
