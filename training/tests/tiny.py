"""A tiny training setup shared by the training-loop tests (seconds on 2 CPU cores)."""

from BreastSubtypeTraining.config import TrainingConfig


def tiny_config(**overrides) -> TrainingConfig:
    settings = dict(
        epochs=2,
        batch_size=4,
        learning_rate=2e-3,
        seed=3,
        threads=1,
        augment=False,
        bootstrap_samples=50,
        network={
            "widths": [8, 8, 16, 16],
            "blocks_per_stage": [1, 1, 1, 1],
            "region_features": 8,
            "head_hidden": 8,
        },
        preprocessing={"crop_size_voxels": [32, 32, 32], "target_spacing_mm": 1.5},
        model_id="tiny-test",
        demonstration=True,
    )
    settings.update(overrides)
    return TrainingConfig.from_dict(settings)


# The same tiny run as a YAML config, for the command-line tests.
TINY_YAML = """
epochs: 1
batch_size: 4
seed: 3
threads: 1
augment: false
bootstrap_samples: 50
network: {widths: [8, 8, 16, 16], blocks_per_stage: [1, 1, 1, 1], region_features: 8, head_hidden: 8}
preprocessing: {crop_size_voxels: [32, 32, 32], target_spacing_mm: 1.5}
demonstration: true
"""
