"""Results table contents from a prediction.json dictionary; placement under the input's study."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
import slicer

from BreastSubtypeMRML import hierarchy, tables, volumes

PREDICTION = {
    "model": {"id": "demo", "version": "0.1.0", "demonstration": True},
    "er": {"probability": 0.8234, "positive": True, "threshold": 0.5},
    "pr": {"probability": 0.41, "positive": False, "threshold": 0.45},
    "her2": {"probability": 0.1, "positive": False, "threshold": 0.5},
    "ki67_percent": 23.46,
    "subtype": {"name": "Luminal B-like HER2-negative", "scheme": "st_gallen_2013", "probability": 0.55,
                "uncertain": True},
    "roi_weights": {"core": 0.2, "rim": 0.5, "peritumoral": 0.3},
    "warnings": ["rim narrowed to 1.4 mm"],
}  # fmt: skip


def test_results_table_rows(mrml):
    node = tables.add_results_table(mrml.scene, PREDICTION, "results")
    rows = tables.table_rows(node)
    assert rows == [
        ("ER probability", "0.823", "0.500", "positive"),
        ("PR probability", "0.410", "0.450", "negative"),
        ("HER2 probability", "0.100", "0.500", "negative"),
        ("Ki-67 (%)", "23.5", "", ""),
        ("Surrogate subtype", "Luminal B-like HER2-negative", "st_gallen_2013", "uncertain (p = 0.55)"),
        ("ROI weight core", "0.200", "", ""),
        ("ROI weight rim", "0.500", "", ""),
        ("ROI weight peritumoral", "0.300", "", ""),
        ("Model", "demo 0.1.0", "", ""),
        ("Warning", tables.DEMONSTRATION_WARNING, "", ""),
        ("Warning", "rim narrowed to 1.4 mm", "", ""),
    ]
    assert [node.GetColumnName(i) for i in range(4)] == list(tables.COLUMNS)


def test_margin_evidence_table_holds_each_call_s_three_strongest_numbers(mrml):
    margin = {
        "values": {"peritumoral_0_1mm_mean": 0.81, "core_mean": 1.5, "margin_radius_cv": 0.04, "core_sd": 0.3},
        "evidence": {"her2": {"peritumoral_0_1mm_mean": 1.234, "core_mean": -0.05, "margin_radius_cv": -0.4,
                              "core_sd": 0.1}},
    }  # fmt: skip
    node = tables.add_evidence_table(mrml.scene, {**PREDICTION, "margin_profile": margin}, "evidence")
    assert tables.table_rows(node) == [
        ("HER2", "Peritumoral 0-1 mm outside the margin: mean signal intensity", "0.810", "+1.23"),
        ("HER2", "Margin irregularity (radius variation)", "0.040", "-0.40"),
        ("HER2", "Core: signal heterogeneity (SD)", "0.300", "+0.10"),
    ]
    assert [node.GetColumnName(i) for i in range(4)] == list(tables.EVIDENCE_COLUMNS)
    assert node.GetAttribute(tables.EVIDENCE_ATTRIBUTE) == "1"  # what the module's selector lists
    # The results table stays compact: no evidence rows there.
    assert tables.result_rows({**PREDICTION, "margin_profile": margin}) == tables.result_rows(PREDICTION)
    # No evidence (a model without the margin profile, or no Grad-CAM): no table at all.
    before = mrml.scene.GetNumberOfNodesByClass("vtkMRMLTableNode")
    assert tables.add_evidence_table(mrml.scene, PREDICTION, "none") is None
    assert mrml.scene.GetNumberOfNodesByClass("vtkMRMLTableNode") == before


def test_refilling_replaces_rows(mrml):
    node = tables.add_results_table(mrml.scene, PREDICTION, "results")
    tables.fill_results_table(node, {"er": {"probability": 0.2, "positive": False, "threshold": 0.5}})
    assert tables.table_rows(node)[0] == ("ER probability", "0.200", "0.500", "negative")
    assert node.GetNumberOfRows() == 4  # three receptors and an empty Ki-67 row


def _volume(mrml):
    image = sitk.GetImageFromArray(np.zeros((2, 3, 4), np.int16))
    return volumes.volume_node_from_sitk(mrml.scene, image, "post-contrast")


def test_results_go_under_the_input_study(mrml):
    volume = _volume(mrml)
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml.scene)
    patient = sh.CreateSubjectItem(sh.GetSceneItemID(), "Patient 1")
    study = sh.CreateStudyItem(patient, "Breast MRI")
    sh.SetItemParent(hierarchy.item_of(mrml.scene, volume), study)
    table = tables.add_results_table(mrml.scene, PREDICTION, "results")
    folder = hierarchy.results_folder(mrml.scene, volume, "BreastSubtype")
    hierarchy.place_in_folder(mrml.scene, folder, table)
    assert sh.GetItemParent(folder) == study
    assert sh.GetItemParent(sh.GetItemByDataNode(table)) == folder
    assert hierarchy.results_folder(mrml.scene, volume, "BreastSubtype") == folder  # reused


def test_without_a_study_results_sit_beside_the_volume(mrml):
    volume = _volume(mrml)
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(mrml.scene)
    folder = hierarchy.results_folder(mrml.scene, volume, "BreastSubtype")
    assert sh.GetItemParent(folder) == sh.GetItemParent(sh.GetItemByDataNode(volume)) == sh.GetSceneItemID()
