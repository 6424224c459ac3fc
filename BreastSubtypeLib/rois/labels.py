"""Label values of the ROI labelmap (``rois.nrrd``, SPEC §6) shared by every front end."""

CORE = 1
RIM = 2
PERITUMORAL = 3

ROI_NAMES = {CORE: "core", RIM: "rim", PERITUMORAL: "peritumoral"}

# Distinct on grey MRI and for common colour-vision deficiencies: warm core, yellow rim, blue surround.
ROI_COLORS_RGB = {
    CORE: (0.85, 0.20, 0.15),
    RIM: (0.95, 0.75, 0.10),
    PERITUMORAL: (0.20, 0.55, 0.90),
}
