import math

import numpy as np
import pytest

from BreastSubtypeTraining import metrics


def test_auc_of_known_ranking_with_ties_and_missing_labels():
    # 2 positives x 2 negatives: pairs (0.35 vs 0.1) win, (0.35 vs 0.4) lose, 0.8 wins twice -> 3/4.
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    # A tie between a positive and a negative counts one half; unlabeled cases are ignored.
    assert metrics.roc_auc([0, 1, None, float("nan")], [0.5, 0.5, 0.9, 0.1]) == pytest.approx(0.5)
    assert math.isnan(metrics.roc_auc([1, 1, 1], [0.2, 0.3, 0.4]))


def test_bootstrap_ci_is_seeded_and_contains_the_point_estimate():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    p = np.clip(y * 0.3 + rng.random(80) * 0.7, 0, 1)
    first = metrics.bootstrap_auc(y, p, n_boot=300, seed=11)
    second = metrics.bootstrap_auc(y, p, n_boot=300, seed=11)
    assert first == second
    assert first["ci_low"] <= first["auc"] <= first["ci_high"]
    assert first["auc"] == pytest.approx(metrics.roc_auc(y, p))
    assert first["n"] == 80 and first["n_positive"] == int(y.sum())


def test_youden_threshold_separates_perfect_scores_and_gives_sens_spec():
    y = [0, 0, 0, 1, 1]
    p = [0.1, 0.2, 0.3, 0.7, 0.9]
    threshold = metrics.youden_threshold(y, p)
    assert threshold == pytest.approx(0.5)  # half-way between 0.3 and 0.7
    result = metrics.sensitivity_specificity(y, p, 0.25)
    assert result["sensitivity"] == 1.0 and result["specificity"] == pytest.approx(2 / 3)


def test_regression_metrics_hand_values():
    result = metrics.regression_metrics([10, 20, 30, None], [12, 18, 33, 50])
    assert result["mae"] == pytest.approx(7 / 3)
    assert result["rmse"] == pytest.approx(math.sqrt((4 + 4 + 9) / 3))
    assert result["n"] == 3
    assert metrics.regression_metrics([1, 2, 3], [2, 4, 6])["pearson_r"] == pytest.approx(1.0)


def test_ece_is_zero_for_perfectly_calibrated_bins_and_hand_value_otherwise():
    # Bin [0.2,0.3): 5 cases at p=0.2, one positive; bin [0.8,0.9): 5 cases at p=0.8, four positive.
    y = [1, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    p = [0.2] * 5 + [0.8] * 5
    assert metrics.expected_calibration_error(y, p) == pytest.approx(0.0, abs=1e-12)
    overconfident = [0.0] * 5 + [1.0] * 5
    assert metrics.expected_calibration_error(y, overconfident) == pytest.approx(0.2)


def test_reliability_plot_writes_png(tmp_path):
    path = metrics.reliability_plot({"er": ([0, 1, 1, 0], [0.2, 0.8, 0.6, 0.3])}, tmp_path / "rel.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_counts_and_skips_unknown_truth():
    labels = ["A", "B"]
    matrix = metrics.confusion_matrix(["A", "A", "B", None], ["A", "B", "B", "A"], labels)
    assert matrix.tolist() == [[1, 1], [0, 1]]


def test_phantom_ceiling_is_the_auc_of_the_true_probabilities_and_the_ki67_floor():
    from BreastSubtypeTraining.evaluate import phantom_ceiling

    predictions = {
        "case_id": ["a", "b", "c", "d", "extra"],
        "er": np.array([0, 0, 1, 1, 1.0]),
        "pr": np.array([1, 0, 1, 0, 1.0]),
        "her2": np.array([0, 1, np.nan, 0, 1.0]),
        "ki67_percent": np.array([10, 20, 30, np.nan, 5.0]),
    }
    truth = {
        case: {"p_er": p_er, "p_pr": 0.5, "p_her2": p_her2, "ki67_expected": ki67}
        for case, p_er, p_her2, ki67 in (
            ("a", 0.1, 0.2, 12),
            ("b", 0.4, 0.9, 17),
            ("c", 0.35, 0.5, 30),
            ("d", 0.8, 0.1, 50),
        )
    }
    ceiling = phantom_ceiling(predictions, truth, n_boot=20)
    assert ceiling["n_cases"] == 4  # "extra" has no truth
    assert ceiling["er"]["auc"] == pytest.approx(0.75)
    assert ceiling["pr"]["auc"] == pytest.approx(0.5)  # constant probabilities: all ties
    assert ceiling["her2"]["auc"] == pytest.approx(1.0)  # case c unlabelled
    assert ceiling["ki67_percent"]["mae"] == pytest.approx((2 + 3 + 0) / 3)
    assert "ki67_against_expected" not in ceiling  # no model predictions given
    predictions["ki67_predicted"] = np.array([14, 17, 24, 40, 9.0])
    against = phantom_ceiling(predictions, truth, n_boot=20)["ki67_against_expected"]
    # every case with truth counts, labelled or not: |14-12|, |17-17|, |24-30|, |40-50|
    assert (against["n"], against["mae"]) == (4, pytest.approx((2 + 0 + 6 + 10) / 4))
