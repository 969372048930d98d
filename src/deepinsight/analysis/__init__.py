"""Per-run analysis of a trained detector: test-set figures, feature PCA and the SVM probe."""
