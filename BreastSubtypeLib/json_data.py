"""Plain JSON from the library's results: one conversion for prediction.json, metrics and packages.

JSON has no NaN, numpy scalars or dataclasses: undefined figures (an AUC with one class) become
null, numpy scalars plain numbers, dataclasses objects.

>>> json_safe({"auc": float("nan"), "n": np.int64(3), "ci": (0.5, np.float32(0.75))})
{'auc': None, 'n': 3, 'ci': [0.5, 0.75]}
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np

from BreastSubtypeLib.atomic import write_text_atomic


def json_safe(value):
    """``value`` with every part JSON can hold as it is and the rest converted (see the module)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return json_safe(dataclasses.asdict(value))
    return value


def write_json(path: str | os.PathLike, data) -> Path:
    """``data`` as indented JSON, written atomically."""
    return write_text_atomic(path, json.dumps(json_safe(data), indent=2) + "\n")
