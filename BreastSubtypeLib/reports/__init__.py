"""Human-readable outputs: perceptual colour maps, PNG overlays and the self-contained HTML report."""
