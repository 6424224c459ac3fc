"""The linear read of the numbers (scalar_skip) and its learning-rate factor (TrainingConfig.linear_lr_factor)."""

import pytest
from safetensors.torch import load_file
from tiny import tiny_config

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeTraining.config import TrainingConfig
from BreastSubtypeTraining.train import fit


def _linear_weight_norm(run_dir) -> float:
    tensors = load_file(str(run_dir / "checkpoints" / "best.safetensors"))
    return sum(
        float(v.norm())
        for k, v in tensors.items()
        if k.startswith("network.scalar_skip.") and "ki67" not in k
    )


def test_a_larger_linear_learning_rate_moves_the_linear_read_further(phantom_rows, tmp_path):
    """Adam moves a weight by about the learning rate a step: with the same schedule, seed and data,
    the receptors' linear weights end larger when their learning rate is 30 x the rest's."""
    plain, fast = tmp_path / "plain", tmp_path / "fast"
    fit(phantom_rows, plain, tiny_config(epochs=2, linear_lr_factor=1.0), device="cpu")
    fit(phantom_rows, fast, tiny_config(epochs=2, linear_lr_factor=30.0), device="cpu")
    assert _linear_weight_norm(fast) > 3 * _linear_weight_norm(plain) > 0


@pytest.mark.parametrize("value", [0, -1.0, True, "fast"])
def test_a_linear_learning_rate_factor_that_is_not_a_positive_number_is_refused(value):
    with pytest.raises(BadInputError, match="linear_lr_factor must be a positive number"):
        TrainingConfig.from_dict({"linear_lr_factor": value})
