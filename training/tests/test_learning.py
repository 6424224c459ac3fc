"""The default recipe learns: a CI-sized fit on a few dozen phantoms must find the strongest signal.

ER is carried by the tumour's margin and its rim-versus-core enhancement (phantom.biomarkers), the
strongest imaging correlate in the phantoms. With the `fit` defaults (network, preprocessing, loss,
schedule) and only fewer epochs, a network trained on 64 phantoms must rank ER on 48 phantoms of
another seed far above chance. Deterministic: same seeds, same figures on a given machine.
"""

from __future__ import annotations

import pytest

from BreastSubtypeTraining.config import TrainingConfig
from BreastSubtypeTraining.manifest import read_manifest
from BreastSubtypeTraining.metrics import roc_auc
from BreastSubtypeTraining.train import fit

SIZE_IJK, SPACING_MM = (64, 64, 32), (1.4, 1.4, 2.2)


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    from BreastSubtypeLib.phantom import write_phantom_cohort

    root = tmp_path_factory.mktemp("learning")
    train = write_phantom_cohort(root / "train", n=72, seed=3101, size_ijk=SIZE_IJK, spacing_mm=SPACING_MM)
    held_out = write_phantom_cohort(
        root / "held_out", n=48, seed=3102, size_ijk=SIZE_IJK, spacing_mm=SPACING_MM
    )
    return read_manifest(train), read_manifest(held_out), root


def test_default_recipe_learns_er_on_a_small_cohort(cohorts):
    from BreastSubtypeLib.inference.runner import ModelRunner, probabilities
    from BreastSubtypeLib.preprocessing.case import prepare_case, read_case
    from BreastSubtypeTraining.config import build_configs

    train_rows, held_out_rows, root = cohorts
    defaults = TrainingConfig()
    config = TrainingConfig.from_dict(
        {"epochs": 12, "threads": 2, "bootstrap_samples": 50, "split_ratios": [0.85, 0.15, 0.0]}
    )
    result = fit(train_rows, root / "run", config, device="cpu")
    assert config.network == defaults.network and config.preprocessing == defaults.preprocessing

    runner = ModelRunner(result.network, "cpu")
    _network_config, preprocessing_config = build_configs(config)
    labels, scores = [], []
    for row in held_out_rows:
        prepared = prepare_case(read_case(row.image, row.mask), preprocessing_config)
        outputs = runner.outputs(prepared.model_input.array[None], prepared.model_input.scalars[None])
        labels.append(row.er)
        scores.append(float(probabilities(outputs["er"])[0]))
    auc = roc_auc(labels, scores)
    assert auc >= 0.75, f"held-out ER AUC {auc:.3f}"
