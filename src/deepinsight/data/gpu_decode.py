"""JPEG decoding on the GPU (nvJPEG via ``torchvision.io.decode_jpeg``); workers only read bytes.

An alternative input path for machines whose CPUs cannot keep a GPU fed: loader workers return
each file's raw bytes, and the batch is decoded, resized and scaled on the GPU. nvJPEG's IDCT and
up-sampling are not libjpeg-turbo's, so its pixels differ slightly from PIL's; predictions would
then no longer match ``predict`` (which decodes with PIL) to 1e-5. It is therefore measured
(``benchmarks/loader_throughput.py --gpu-decode``, ``benchmarks/gpu_suite.py``) but not used by
training; the difference it makes is reported by :func:`max_difference_from_pil`. torchvision
0.29 also deprecates its image decoders in favour of TorchCodec.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_jpeg, read_file
from torchvision.transforms.v2 import functional as F

from deepinsight.data.layouts import Sample


class EncodedImageDataset(Dataset):
    """Items are ``(file bytes as a uint8 tensor, label, index)``; nothing is decoded here."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        sample = self.samples[index]
        label = torch.tensor(sample.label, dtype=torch.float32)
        return read_file(str(sample.path)), label, index


# One batch of files' bytes: all of them in one flat uint8 tensor, and each file's length.
EncodedBatch = tuple[torch.Tensor, torch.Tensor]


def collate_encoded(batch) -> tuple[EncodedBatch, torch.Tensor, torch.Tensor]:
    """Pack the variable-length byte tensors into one; stack labels and indices.

    A worker hands each tensor of a batch to the main process as its own shared-memory file
    descriptor. A list of 32 byte tensors per batch, times the batches in flight of 8 workers,
    ran out of descriptors on the H200 machine ("Bad file descriptor", then a hung loader);
    packed, a batch is two tensors whatever its size.
    """
    data, labels, indices = zip(*batch)
    lengths = torch.tensor([len(d) for d in data], dtype=torch.int64)
    return (torch.cat(data), lengths), torch.stack(labels), torch.tensor(indices)


def unpack_encoded(encoded: EncodedBatch) -> list[torch.Tensor]:
    """The per-file byte tensors of a packed batch (views, no copy)."""
    flat, lengths = encoded
    return list(torch.split(flat, lengths.tolist()))


def decode_batch(
    encoded: EncodedBatch, image_size: int, device: str | torch.device
) -> torch.Tensor:
    """Decode JPEG bytes on ``device`` and resize: (B, 3, S, S) uint8, like the cached pipeline."""
    images = decode_jpeg(unpack_encoded(encoded), mode=ImageReadMode.RGB, device=device)
    out = torch.empty(
        (len(images), 3, image_size, image_size), dtype=torch.uint8, device=images[0].device
    )
    # Same-sized images (all of the Kaggle set) resize as one batch.
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(tuple(image.shape), []).append(i)
    for rows in by_shape.values():
        stacked = torch.stack([images[i] for i in rows])
        out[rows] = F.resize(stacked, [image_size, image_size], antialias=True)
    return out


def max_difference_from_pil(samples: Sequence[Sample], image_size: int, device: str) -> float:
    """Largest absolute difference in [0, 1] units between GPU-decoded and PIL-decoded pixels."""
    from deepinsight.data.image_io import load_image
    from deepinsight.data.transforms import build_eval_transform, make_preprocessing

    reference = build_eval_transform(make_preprocessing("rgb", image_size))
    expected = torch.stack([reference(load_image(s.path)) for s in samples])
    dataset = EncodedImageDataset(samples)
    encoded, _, _ = collate_encoded([dataset[i] for i in range(len(dataset))])
    got = decode_batch(encoded, image_size, device).float().div(255).cpu()
    return float((got - expected).abs().max())
