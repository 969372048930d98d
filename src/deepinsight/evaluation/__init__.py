"""Evaluation beyond one test split: the robustness grid (perturbations, then re-scoring)."""
