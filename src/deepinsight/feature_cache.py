"""Frozen-backbone features, computed once per image and reused every epoch.

A linear probe on a frozen backbone (``model.freeze_backbone=true``) spends almost all its time
in the backbone's forward pass, whose output for a given image never changes: the backbone is
in eval mode with no gradients, and un-augmented images are the same tensor every epoch. After
the first epoch only the head runs (UniversalFakeDetect's probe trains in seconds this way).
``benchmarks/probe_feature_cache.py`` measures it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class FeatureCache:
    """Per split, a growable ``(N, F)`` table of features and which rows are filled."""

    def __init__(self) -> None:
        self._tables: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def features(
        self,
        split: str,
        indices: torch.Tensor,
        images: torch.Tensor,
        compute: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The features of ``images`` (rows ``indices`` of ``split``); new ones are computed."""
        table, filled = self._table(split, int(indices.max()) + 1, images.device)
        missing = ~filled[indices]
        if bool(missing.any()):
            with torch.no_grad():
                new = compute(images[missing]).float()
            if table.shape[1] == 0:  # the first batch tells the feature width
                table = torch.zeros(len(filled), new.shape[1], device=images.device)
                self._tables[split] = (table, filled)
            table[indices[missing]] = new
            filled[indices[missing]] = True
        return table[indices]

    def _table(self, split: str, rows: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        table, filled = self._tables.get(
            split,
            (torch.zeros(0, 0, device=device), torch.zeros(0, dtype=torch.bool, device=device)),
        )
        if rows > len(filled):  # grow to the largest index seen (doubling: few copies)
            size = max(rows, 2 * len(filled))
            grown = torch.zeros(size, table.shape[1], device=device)
            grown[: len(table)] = table
            more = torch.zeros(size, dtype=torch.bool, device=device)
            more[: len(filled)] = filled
            table, filled = grown, more
            self._tables[split] = (table, filled)
        return table, filled

    def filled(self, split: str) -> int:
        """How many images of ``split`` have cached features."""
        return int(self._tables[split][1].sum()) if split in self._tables else 0
