"""Any timm backbone: names, pretrained weights from a file or the hub (offline), the input
normalisation that travels with them, and the fine-tuning controls (frozen probe, warm-up,
head LR, layer-wise decay). timm's ``test_*`` models keep every test to a fraction of a second.
"""

from __future__ import annotations

import csv
import io

import lightning as L
import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file
from torch.utils.data import DataLoader, TensorDataset

from deepinsight.errors import DeepInsightError
from deepinsight.lightning_module import DeepfakeClassifier
from deepinsight.models import create_model

# Small timm models with BatchNorm and ImageNet's mean/std (test_efficientnet), or 0.5/0.5.
TINY_CNN = "test_efficientnet"
TINY_VIT = "test_vit"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A randomly initialised TINY_CNN's published-format weights (classifier included)."""
    torch.manual_seed(3)
    source = timm.create_model(TINY_CNN)  # 1000-class head, as timm publishes weights
    path = tmp_path_factory.mktemp("weights") / "w.safetensors"
    save_file(source.state_dict(), str(path))
    return path, source.state_dict()


def test_pretrained_file_loads_exactly_rgb_and_grayscale(weights_file):
    path, saved = weights_file
    rgb = create_model(TINY_CNN, in_chans=3, pretrained_file=str(path))
    loaded = rgb.backbone.state_dict()
    assert set(loaded) == {k for k in saved if not k.startswith("classifier.")}
    assert all(torch.equal(loaded[k], saved[k]) for k in loaded)
    # The normalisation comes from timm's pretrained config, per channel.
    assert rgb.normalization == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])

    gray = create_model(TINY_CNN, in_chans=1, pretrained_file=str(path))
    stem = gray.backbone.conv_stem.weight
    assert stem.shape[1] == 1
    # timm's adaptation: the colour kernels summed, so a grey image sees the same filter.
    assert torch.allclose(stem, saved["conv_stem.weight"].sum(dim=1, keepdim=True))
    rest = {k: v for k, v in gray.backbone.state_dict().items() if k != "conv_stem.weight"}
    assert all(torch.equal(v, saved[k]) for k, v in rest.items())
    mean, std = gray.normalization
    assert mean == pytest.approx([(0.485 + 0.456 + 0.406) / 3])
    assert std == pytest.approx([(0.229 + 0.224 + 0.225) / 3])


def test_bad_weights_files_are_one_line_errors(weights_file, tmp_path):
    path, _ = weights_file
    with pytest.raises(DeepInsightError, match="not found"):
        create_model(TINY_CNN, pretrained_file=str(tmp_path / "missing.safetensors"))
    other = tmp_path / "other.safetensors"
    save_file(timm.create_model("test_resnet").state_dict(), str(other))
    with pytest.raises(DeepInsightError, match="does not fit test_efficientnet") as err:
        create_model(TINY_CNN, pretrained_file=str(other))
    assert "\n" not in str(err.value)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a weights file" * 8)
    with pytest.raises(DeepInsightError, match="cannot be loaded into") as err:
        create_model(TINY_CNN, pretrained_file=str(junk))
    assert "\n" not in str(err.value)
    # The same architecture's weights also load into it from a torch state dict.
    state = tmp_path / "w.pt"
    torch.save(timm.create_model(TINY_CNN).state_dict(), state)
    assert create_model(TINY_CNN, pretrained_file=str(state)).num_features > 0


def test_unknown_names_get_close_matches():
    with pytest.raises(DeepInsightError, match="did you mean.*resnet18") as err:
        create_model("resnet18x")
    assert "\n" not in str(err.value)
    with pytest.raises(DeepInsightError, match="does not accept"):
        create_model(TINY_CNN, no_such_option=1)


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path):
    """The hub at a closed local port and an empty Hugging Face cache."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    for name in ("HTTPS_PROXY", "https_proxy", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "hf"


def test_pretrained_without_network_fails_naming_pretrained_file(unreachable_hub):
    with pytest.raises(DeepInsightError, match="cannot be reached.*pretrained_file") as err:
        create_model(TINY_CNN, pretrained=True)
    assert "\n" not in str(err.value)


def test_pretrained_without_network_uses_the_local_cache(unreachable_hub, weights_file):
    # The hub cache's layout: refs/main names the snapshot that holds the file.
    path, saved = weights_file
    repo = unreachable_hub / "models--timm--test_efficientnet.r160_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(path.read_bytes())
    net = create_model(TINY_CNN, pretrained=True)
    assert torch.equal(net.backbone.conv_stem.weight, saved["conv_stem.weight"])


def test_vits_are_built_for_the_data_size():
    vit = create_model(TINY_VIT, in_chans=1, image_size=48)
    assert vit(torch.rand(2, 1, 48, 48)).shape == (2,)


# -- fine-tuning controls ----------------------------------------------------------------
def _loader(n: int = 16, size: int = 32) -> DataLoader:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, size, size, generator=generator)
    targets = torch.arange(n) % 2
    return DataLoader(TensorDataset(images, targets, torch.arange(n)), batch_size=4)


def _fit(module: DeepfakeClassifier, epochs: int) -> None:
    trainer = L.Trainer(
        max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )  # fmt: skip
    trainer.fit(module, train_dataloaders=_loader())


def _snapshot(module: DeepfakeClassifier) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.net.state_dict().items()}


def _changed(before, after, prefix: str) -> set[str]:
    return {k for k in before if k.startswith(prefix) and not torch.equal(before[k], after[k])}


def test_frozen_backbone_trains_only_the_head(weights_file):
    path, _ = weights_file
    module = DeepfakeClassifier(
        net={"name": TINY_CNN, "in_chans": 3, "pretrained_file": str(path)},
        freeze_backbone=True,
    )
    before = _snapshot(module)
    _fit(module, epochs=1)
    after = _snapshot(module)
    assert _changed(before, after, "head.") == {"head.weight", "head.bias"}
    # Weights and BatchNorm running statistics (and their counters) untouched.
    assert _changed(before, after, "backbone.") == set()
    assert any(k.endswith("running_mean") for k in before)


def test_unfreezing_after_a_warm_up_trains_the_backbone(weights_file):
    path, _ = weights_file
    module = DeepfakeClassifier(
        net={"name": TINY_CNN, "in_chans": 3, "pretrained_file": str(path)},
        freeze_backbone=True,
        unfreeze_backbone_at_epoch=1,
    )
    before = _snapshot(module)
    _fit(module, epochs=1)
    assert _changed(before, _snapshot(module), "backbone.") == set()
    _fit(module, epochs=2)  # a fresh trainer from epoch 0: frozen, then epoch 1 unfrozen
    changed = _changed(before, _snapshot(module), "backbone.")
    assert any(k.endswith(".weight") for k in changed)
    assert any(k.endswith("running_mean") for k in changed)


def test_cached_features_train_the_same_head_and_run_the_backbone_once(weights_file):
    path, _ = weights_file
    heads, calls = {}, {}
    for cache in (False, True):
        torch.manual_seed(0)
        module = DeepfakeClassifier(
            net={"name": TINY_CNN, "in_chans": 3, "pretrained_file": str(path)},
            freeze_backbone=True,
            cache_features=cache,
        )
        calls[cache] = 0

        def count(*_, cache=cache):
            calls[cache] += 1

        module.net.backbone.register_forward_hook(count)
        _fit(module, epochs=3)
        heads[cache] = module.net.head.weight.detach().clone()
    batches = len(_loader())
    assert calls[False] == 3 * batches and calls[True] == batches
    assert module.feature_cache.filled("train") == 16
    assert torch.allclose(heads[True], heads[False], atol=1e-5)
    with pytest.raises(DeepInsightError, match="frozen for the whole run"):
        DeepfakeClassifier(net={"name": TINY_CNN}, cache_features=True)


def test_unfreezing_needs_a_frozen_backbone():
    with pytest.raises(DeepInsightError, match="freeze_backbone"):
        DeepfakeClassifier(net={"name": TINY_CNN}, unfreeze_backbone_at_epoch=1)


def test_head_lr_and_layer_decay_make_parameter_groups():
    import functools

    module = DeepfakeClassifier(
        net={"name": TINY_VIT, "in_chans": 3, "image_size": 32},
        optimizer=functools.partial(torch.optim.AdamW, lr=1e-4, weight_decay=0.05),
        scheduler=functools.partial(torch.optim.lr_scheduler.OneCycleLR, max_lr=1e-3),
        scheduler_interval="step",
        head_lr=1e-2,
        layer_decay=0.5,
    )
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, accelerator="cpu")
    trainer.fit(module, train_dataloaders=_loader(n=4))
    optimizer = trainer.optimizers[0]
    head = optimizer.param_groups[-1]
    assert {id(p) for p in head["params"]} == {id(p) for p in module.net.head.parameters()}
    scales = sorted({round(g["lr_scale"], 6) for g in optimizer.param_groups[:-1]})
    # One rate per depth (embeddings, each block, the final norm), halving at each step down.
    assert len(scales) >= 3 and scales == [0.5**k for k in reversed(range(len(scales)))]
    assert head["lr_scale"] == pytest.approx(100.0)  # head_lr / lr
    # OneCycleLR peaks each group at max_lr times its scale.
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    peaks = [g["max_lr"] for g in optimizer.param_groups]
    assert peaks[-1] == pytest.approx(1e-1)
    assert min(peaks[:-1]) == pytest.approx(1e-3 * scales[0]) and scheduler is not None
    # Biases and norms are not decayed (timm's rule); weights are.
    assert {g["weight_decay"] for g in optimizer.param_groups[:-1]} == {0.0, 0.05}


def test_normalised_model_scores_agree_across_checkpoint_predict_and_onnx(tmp_path, capsys):
    from helpers.inference_fixtures import make_checkpoint, random_rgb, run_cli

    from deepinsight.export import main as export_main
    from deepinsight.inference import load_detector
    from deepinsight.predict import main as predict_main

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    ckpt = make_checkpoint(
        tmp_path / "best.ckpt", TINY_CNN, 3, preprocessing={"mean": mean, "std": std}
    )
    detector = load_detector(ckpt, device="cpu")
    assert detector.net.normalization == (mean, std)
    images = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    # The stored normalisation is applied: scores differ from the same weights without it.
    raw = create_model(TINY_CNN, in_chans=3).eval()
    raw.load_state_dict(detector.net.state_dict())
    raw.set_normalization(None, None)
    with torch.no_grad():
        unnormalised = torch.sigmoid(raw(images)).numpy()
    expected = detector.score(images)
    assert np.abs(expected - unnormalised).max() > 1e-3

    code, _, err = run_cli(export_main, [f"ckpt={ckpt}", f"output={tmp_path / 'm.onnx'}"], capsys)
    assert code == 0, err
    onnx_detector = load_detector(tmp_path / "m.onnx")
    assert onnx_detector.spec.preprocessing["mean"] == mean
    assert np.abs(onnx_detector.score(images) - expected).max() < 1e-5

    for i in range(3):
        random_rgb(seed=i).save(tmp_path / f"face{i}.png")
    scores = {}
    for model in (ckpt, tmp_path / "m.onnx"):
        code, out, err = run_cli(
            predict_main, [f"ckpt={model}", f"inputs=['{tmp_path}/*.png']", "num_workers=0"], capsys
        )
        assert code == 0, err
        scores[model.suffix] = np.array(
            [float(r["score"]) for r in csv.DictReader(io.StringIO(out))]
        )
    assert np.abs(scores[".ckpt"] - scores[".onnx"]).max() < 1e-5


def test_checkpoints_without_normalisation_still_load(tmp_path):
    from helpers.inference_fixtures import make_checkpoint

    from deepinsight.inference import load_detector

    # A timm model written before mean/std existed is rebuilt without normalisation.
    ckpt = make_checkpoint(tmp_path / "old.ckpt", "efficientnet", 3, variant=TINY_CNN)
    assert load_detector(ckpt, device="cpu").net.normalization is None


# -- through the training entry point ------------------------------------------------------
@pytest.fixture(scope="module")
def vit_file(tmp_path_factory):
    torch.manual_seed(4)
    path = tmp_path_factory.mktemp("vit") / "vit.safetensors"
    save_file(timm.create_model(TINY_VIT).state_dict(), str(path))
    return path


TINY_RUN = [
    "data.image_size=32", "data.batch_size=4", "trainer=cpu", "logger=none",
    "analysis.enabled=false",
]  # fmt: skip


@pytest.mark.parametrize("variant", ["rgb", "grayscale"])
@pytest.mark.parametrize("model", ["timm", "clip_probe"])
def test_fast_dev_run(model, variant, compose, tiny_dataset, tmp_path, weights_file, vit_file):
    from deepinsight.train import train

    net = (
        [f"model.net.name={TINY_CNN}"]
        if model == "timm"
        else [f"model.net.name={TINY_VIT}", f"model.net.pretrained_file={vit_file}"]
    )
    cfg = compose(
        [f"model={model}", f"data={variant}", f"data.root={tiny_dataset}", *net, *TINY_RUN,
         "trainer.fast_dev_run=true"],
        run_dir=tmp_path / "run",
    )  # fmt: skip
    assert cfg.model.freeze_backbone is (model == "clip_probe")
    results = train(cfg)
    assert results["status"] == "completed" and results["test"]["n"] == 4
    stored = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    channels = 1 if variant == "grayscale" else 3
    assert len(stored["deepinsight"]["preprocessing"]["mean"]) == channels


def test_clip_probe_needs_its_weights_file(compose):
    from omegaconf.errors import MissingMandatoryValue

    cfg = compose(["model=clip_probe"])
    with pytest.raises(MissingMandatoryValue):
        _ = cfg.model.net.pretrained_file


def test_a_probe_trains_and_predict_and_export_use_its_normalisation(
    compose, tiny_dataset, tmp_path, weights_file, capsys
):
    """The issue's "done when": train a frozen probe from a weights file, then predict and
    export score exactly as the run's own test predictions."""
    from helpers.inference_fixtures import run_cli

    from deepinsight.export import main as export_main
    from deepinsight.predict import main as predict_main
    from deepinsight.train import train

    path, _ = weights_file
    run = tmp_path / "run"
    cfg = compose(
        ["model=timm", f"model.net.name={TINY_CNN}", f"model.net.pretrained_file={path}",
         "model.freeze_backbone=true", f"data.root={tiny_dataset}", *TINY_RUN,
         "trainer.max_epochs=1"],
        run_dir=run,
    )  # fmt: skip
    assert train(cfg)["status"] == "completed"
    with (run / "test_predictions.csv").open() as handle:
        trained = {r["path"]: float(r["score"]) for r in csv.DictReader(handle)}
    code, _, err = run_cli(export_main, [f"ckpt={run / 'checkpoints' / 'best.ckpt'}"], capsys)
    assert code == 0, err
    for model in ("best.ckpt", "best.onnx"):
        code, out, err = run_cli(
            predict_main,
            [f"ckpt={run / 'checkpoints' / model}", f"inputs=['{tiny_dataset}/test']",
             "num_workers=0"],
            capsys,
        )  # fmt: skip
        assert code == 0, err
        scores = {r["path"]: float(r["score"]) for r in csv.DictReader(io.StringIO(out))}
        assert scores.keys() == trained.keys()
        assert max(abs(scores[p] - trained[p]) for p in trained) < 1e-5


def test_the_seed_efficientnet_takes_a_weights_file_and_then_normalises(weights_file):
    path, saved = weights_file
    seed_like = create_model("efficientnet", in_chans=3, variant=TINY_CNN)
    assert seed_like.normalization is None  # from scratch: [0, 1] pixels, as the seed
    tuned = create_model("efficientnet", in_chans=3, variant=TINY_CNN, pretrained_file=str(path))
    assert tuned.normalization == ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    assert torch.equal(tuned.backbone.conv_stem.weight, saved["conv_stem.weight"])


def test_cached_features_refuse_augmented_training_images(compose, tiny_dataset, tmp_path):
    from deepinsight.train import train

    cfg = compose(
        ["model=timm", f"model.net.name={TINY_CNN}", "model.freeze_backbone=true",
         "model.cache_features=true", "data=augmented", f"data.root={tiny_dataset}", *TINY_RUN,
         "trainer.fast_dev_run=true"],
        run_dir=tmp_path / "run",
    )  # fmt: skip
    with pytest.raises(DeepInsightError, match="augmentation"):
        train(cfg)
