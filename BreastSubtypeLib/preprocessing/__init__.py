"""THE preprocessing of a case for the network (crop, normalise, map back), for training and inference."""
