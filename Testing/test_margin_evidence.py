"""Each call's strongest margin-profile numbers, as the report and the Slicer and web panels show them
(``reports.margin_section.evidence_rows``)."""

from __future__ import annotations

from BreastSubtypeLib.reports.margin_section import EvidenceRow, evidence_legend, evidence_rows

MARGIN = {
    "values": {
        "peritumoral_0_1mm_mean": 0.8123,
        "core_mean": 1.5,
        "margin_radius_cv": 0.0437,
        "rim_0_1mm_mean": 1.9,
        "surface_to_volume_ratio": 6.25,
    },
    "evidence": {
        "her2": {
            "core_mean": -0.05,
            "peritumoral_0_1mm_mean": 1.234,
            "rim_0_1mm_mean": 0.3,
            "margin_radius_cv": -0.4,
        },
        "ki67": {"surface_to_volume_ratio": 0.2, "core_mean": -0.2, "a_new_number": 0.0},
    },
    "meaning": "each margin-profile number's push toward the call made, in logit units",
}


def test_three_strongest_by_size_in_the_reports_words_with_value_and_signed_evidence():
    assert evidence_rows(MARGIN) == [
        EvidenceRow("HER2", "Peritumoral 0-1 mm outside the margin: mean signal intensity", "0.812", "+1.23"),
        EvidenceRow("HER2", "Margin irregularity (radius variation)", "0.044", "-0.40"),
        EvidenceRow("HER2", "Rim 0-1 mm inside the margin: mean signal intensity", "1.900", "+0.30"),
        # Equal sizes keep prediction.json's order; a number without a title keeps its name and,
        # without a value, shows none.
        EvidenceRow("Ki-67", "Margin lobulation (surface / volume)", "6.250", "+0.20"),
        EvidenceRow("Ki-67", "Core: mean signal intensity", "1.500", "-0.20"),
        EvidenceRow("Ki-67", "a_new_number", "", "+0.00"),
    ]
    assert [row.call for row in evidence_rows(MARGIN, count=1)] == ["HER2", "Ki-67"]


def test_no_evidence_no_rows():
    assert evidence_rows({}) == []
    assert evidence_rows({"values": MARGIN["values"]}) == []


def test_legend_says_what_the_sign_means_and_where_the_demonstration_model_comes_from():
    legend = evidence_legend(demonstration=True)
    assert "+ supports the call made" in legend and "- argues against it" in legend
    assert "synthetic phantoms" in legend and "\n" not in legend
    assert "synthetic phantoms" not in evidence_legend(demonstration=False)


def test_every_margin_number_has_a_radiologists_title():
    from BreastSubtypeLib.preprocessing.margin_profile import MARGIN_PROFILE_FEATURES
    from BreastSubtypeLib.reports.margin_section import MARGIN_NUMBER_TITLES

    assert set(MARGIN_NUMBER_TITLES) == set(MARGIN_PROFILE_FEATURES)


def test_a_map_of_a_network_that_reads_the_numbers_linearly_says_where_their_part_is():
    import numpy as np

    from BreastSubtypeLib.inference.explain import explanation_notes

    maps = {"gradcam_ki67": np.zeros((2, 2, 2), np.float32), "gradcam_er": np.ones((2, 2, 2), np.float32)}
    linear = explanation_notes(maps, {"ki67": False, "er": True}, numbers_read_linearly=True)
    plain = explanation_notes(maps, {"ki67": False, "er": True})
    supported = explanation_notes(maps, {"ki67": False, "er": True}, support_mm=10.0)
    assert linear["gradcam_ki67"] == {
        "meaning": "Grad-CAM: evidence for the call 'low Ki-67' (1 = strongest); the image's part only: "
        "the margin numbers' part is in the margin profile evidence",
        "empty": True,
    }
    assert plain["gradcam_er"] == {
        "meaning": "Grad-CAM: evidence for the call 'ER positive' (1 = strongest)",
        "empty": False,
    }
    assert supported["gradcam_er"]["meaning"] == (
        "Grad-CAM: evidence for the call 'ER positive' (1 = strongest); "
        "the network reads no tissue beyond 10 mm of the ROIs"
    )
