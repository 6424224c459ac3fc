"""THE preprocessing of a case, for training and inference alike: the case pipeline (``case``:
validate, align, ROIs, lesion checks, model input) and the crop it ends with (``crop``, ``normalise``)."""
