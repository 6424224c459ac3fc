"""MRML logic of the BreastSubtype Slicer module, shared with the web app.

Everything here works on an explicit ``scene`` (``slicer.mrmlScene`` in Slicer, the trame-slicer
scene in the web app, a bare ``vtkMRMLScene`` in tests) and imports only ``slicer`` MRML/logic
classes, vtk, numpy and SimpleITK: never qt, ctk or ``slicer.app``.

Modules
- ``volumes``: volume nodes <-> ``sitk.Image`` with exact geometry (RAS <-> LPS).
- ``segments``: core/rim/peritumoral segments from a ROI labelmap and back; tumour masks.
- ``heatmaps``: heatmap volumes with a perceptual colour table built from colour data.
- ``tables``: the results table from a ``prediction.json`` dictionary.
- ``hierarchy``: placing results under the input volume's study.
- ``io``: saving/loading segmentations and importing a case output folder.
"""
