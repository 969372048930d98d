"""Feature extraction stays within its cap and the linear probe measures what PCA shows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from deepinsight.analysis.embeddings import analyse_test_embeddings, extract_features, linear_probe
from deepinsight.errors import DeepInsightError
from deepinsight.models import create_model

IMAGE_SIZE = 16


def _sorted_dataset(n: int, seed: int) -> TensorDataset:
    """Real (dark) images first, then fake (bright): the order a class-sorted folder gives."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.repeat_interleave(torch.tensor([0, 1]), n // 2)
    images = 0.1 * torch.rand(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator)
    images += 0.2 + 0.6 * labels.float()[:, None, None, None]
    return TensorDataset(images, labels, torch.arange(n))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return create_model("custom_cnn", in_chans=3, widths=(8, 16), dropout=0.0)


def test_cap_is_respected_and_sample_is_random_not_the_first_images(net):
    loader = DataLoader(_sorted_dataset(100, seed=0), batch_size=16)

    features, labels = extract_features(net, loader, max_samples=30)

    assert features.shape == (30, net.num_features)
    assert labels.shape == (30,)
    # The first 30 images are all real; a random subsample holds both classes.
    assert set(labels.tolist()) == {0, 1}


def test_features_equal_forward_features_and_train_mode_is_restored(net):
    dataset = _sorted_dataset(20, seed=1)
    batches = [(dataset.tensors[0][i : i + 8], dataset.tensors[1][i : i + 8]) for i in (0, 8, 16)]
    net.train()

    features, labels = extract_features(net, batches, max_samples=10)

    assert net.training
    net.eval()
    with torch.no_grad():
        expected = net.forward_features(dataset.tensors[0][:10]).numpy()
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    assert labels.tolist() == dataset.tensors[1][:10].tolist()


def test_eval_mode_is_kept_after_extraction(net):
    net.eval()
    extract_features(net, DataLoader(_sorted_dataset(8, seed=2), batch_size=4), max_samples=8)
    assert not net.training


def test_linear_probe_rejects_single_class_training_sample():
    features = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(DeepInsightError, match="only real"):
        linear_probe(features, np.zeros(10), features, np.r_[np.zeros(5), np.ones(5)])


def test_analyse_test_embeddings_writes_pca_and_returns_probe(net, tmp_path):
    train = DataLoader(_sorted_dataset(80, seed=3), batch_size=16, shuffle=True)
    test = DataLoader(_sorted_dataset(60, seed=4), batch_size=16)

    probe = analyse_test_embeddings(net, train, test, tmp_path, max_samples=40)

    assert probe["n_train"] == probe["n_test"] == probe["max_samples"] == 40
    assert 0.0 <= probe["accuracy"] <= 1.0 and 0.0 <= probe["auroc"] <= 1.0
    # Brightness separates the classes, so a linear SVM on the features must find it.
    assert probe["accuracy"] >= 0.9
    assert len(probe["pca_explained_variance"]) == 2
    json.dumps(probe)  # goes into results.json as is
    with Image.open(tmp_path / "embeddings_pca.png") as image:
        assert image.format == "PNG"


def test_precomputed_test_features_give_the_same_probe_as_a_second_pass(net, tmp_path):
    # The training run passes the features its test pass kept instead of a test loader.
    train = DataLoader(_sorted_dataset(80, seed=3), batch_size=16)
    test_set = _sorted_dataset(60, seed=4)
    test = DataLoader(test_set, batch_size=16)
    net.eval()
    with torch.no_grad():
        kept = (net.forward_features(test_set.tensors[0]).numpy(), test_set.tensors[1].numpy())

    from_loader = analyse_test_embeddings(net, train, test, tmp_path / "a", max_samples=40)
    from_kept = analyse_test_embeddings(net, train, kept, tmp_path / "b", max_samples=40)

    assert from_kept["n_test"] == 40
    assert from_kept["accuracy"] == pytest.approx(from_loader["accuracy"])
    assert from_kept["auroc"] == pytest.approx(from_loader["auroc"], abs=1e-6)


def test_sample_rows_picks_the_images_random_subset_picks():
    from deepinsight.analysis.embeddings import sample_rows
    from deepinsight.data.datasets import random_subset

    features, labels = np.arange(50.0)[:, None], np.arange(50) % 2
    rows, row_labels = sample_rows(features, labels, 12, seed=3)
    subset = random_subset(TensorDataset(torch.arange(50)), 12, seed=3)
    assert rows[:, 0].astype(int).tolist() == list(subset.indices)
    assert row_labels.tolist() == [i % 2 for i in subset.indices]
    assert sample_rows(features, labels, 80)[0].shape == (50, 1)  # smaller than the cap: all
