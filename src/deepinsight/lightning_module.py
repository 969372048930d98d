"""One LightningModule for every model and input variant."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import BinaryPrecisionRecallCurve
from torchmetrics.utilities.distributed import gather_all_tensors

from deepinsight.calibration import choose_temperature, scale_logits
from deepinsight.checkpoint_info import DetectorSpec
from deepinsight.errors import DeepInsightError
from deepinsight.feature_cache import FeatureCache
from deepinsight.fine_tuning import FineTuning
from deepinsight.learning_rate import (
    LRScaling,
    bound_keywords,
    offers_unset,
    per_group_peak,
    scale_learning_rates,
)
from deepinsight.metrics import THRESHOLD_RULE, SplitMetrics, f1_maximising_threshold
from deepinsight.models import create_model

log = logging.getLogger(__name__)

# Beside the DetectorSpec: the validation ECE/Brier before and after the stored temperature.
VAL_CALIBRATION_KEY = "deepinsight_val_calibration"


def _plain(value: Any) -> Any:
    """DictConfig -> dict, so hyperparameters stay loadable with ``weights_only=True``."""
    # OmegaConf only when given one: the GPU suite runs this module where it is not installed.
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return dict(value) if isinstance(value, Mapping) else value


def with_normalization(net: nn.Module, preprocessing: dict[str, Any] | None) -> dict | None:
    """``preprocessing`` with the input mean/std the network applies (docs/contracts.md).

    Given ones (a checkpoint's, when Lightning rebuilds the module from it) win over the
    network's default, so a run resumed or reloaded normalises exactly as it trained.
    """
    if preprocessing is None:
        return None
    preprocessing = dict(preprocessing)
    # The input representation (data.input) is the network's first step, as stored.
    net.set_representation(preprocessing.get("input"), preprocessing.get("input_scale"))
    if "mean" in preprocessing:
        net.set_normalization(preprocessing["mean"], preprocessing["std"])
    elif net.normalization is not None:
        preprocessing["mean"], preprocessing["std"] = net.normalization
    return preprocessing


def _advise_input(net: nn.Module, name: str, preprocessing: Mapping[str, Any]) -> None:
    """Say when the data's size or resizing differs from what pretrained weights were made for."""
    from deepinsight.models.timm_models import pretrained_input

    try:
        made_for = pretrained_input(net.backbone)
    except Exception:  # a backbone without timm's config: nothing to compare with
        return
    resize = f"{made_for['interpolation']}_antialias"
    if (made_for["image_size"], resize) != (preprocessing["image_size"], preprocessing["resize"]):
        log.info(
            "%s's weights were trained on %d px images resized %s; this run feeds %d px %s "
            "(data.image_size, data.resize)",
            name, made_for["image_size"], made_for["interpolation"],
            preprocessing["image_size"], preprocessing["resize"],
        )  # fmt: skip


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_options(compile: bool | str) -> dict[str, str]:
    """``torch.compile`` keyword arguments for the ``compile`` setting (``True`` or a mode)."""
    if compile is True or str(compile).lower() == "true":
        return {}
    if compile not in COMPILE_MODES:
        raise DeepInsightError(
            f"model.compile must be true, false or a mode ({', '.join(COMPILE_MODES)}), "
            f"got {compile!r}"
        )
    return {"mode": str(compile)}


class DeepfakeClassifier(L.LightningModule):
    """Binary real-vs-fake training with BCE on one logit; score = sigmoid(logit) = P(fake).

    Args:
        net: the model spec, ``{"name": ..., "in_chans": ..., **kwargs}`` for ``create_model``.
        optimizer: a partially applied optimizer (Hydra ``_partial_: true``) taking params.
        scheduler: optional partially applied LR scheduler taking the optimizer.
        preprocessing: the evaluation preprocessing, stored in checkpoints for inference.
        channels_last: train and validate in the NHWC memory format (faster convolutions with
            tensor cores and oneDNN); test runs in the default format, as ``predict`` does.
        compile: ``torch.compile`` the network for training and validation (opt-in: compiling
            costs a minute or more up front); test runs the eager network, as ``predict`` does.
            ``True`` is torch's default mode; a mode name (``"reduce-overhead"``: CUDA graphs,
            for launch-bound steps such as DenseNet121 at batch 32; ``"max-autotune"``, ...)
            selects that mode. Checkpoints hold the eager network's weights either way.
        scheduler_interval: ``"epoch"`` or ``"step"``: how often the scheduler steps. A
            scheduler that takes ``total_steps`` (``OneCycleLR``) and was not given it gets the
            run's own (``trainer.estimated_stepping_batches``), so ``max_epochs`` and the batch
            size stay the only knobs.
        lr_scaling: optional ``{"rule": "linear"|"sqrt"|"none", "base_batch_size": N}``: the
            configured learning rates (the optimizer's ``lr``, a scheduler's ``max_lr``) are for
            a global batch of N and are scaled by ``B/N`` (linear) or ``sqrt(B/N)`` for the
            run's global batch B (batch size x devices x gradient accumulation).
        freeze_backbone: train the head only (a linear probe): the backbone gets no gradients
            and stays in eval mode, so its BatchNorm statistics and dropout are frozen too.
        cache_features: with a backbone frozen for the whole run, compute each training and
            validation image's features once and reuse them every later epoch (only the head
            runs then). Needs un-augmented training images. Test features are computed afresh.
        unfreeze_backbone_at_epoch: with ``freeze_backbone``, fine-tune everything from this
            epoch on (a warm-up of the new head on frozen features first); None = never.
        head_lr: the head's learning rate, when it should differ from the optimizer's ``lr``
            (a new head on pretrained features usually wants a larger one). Scaled like it.
        layer_decay: layer-wise learning-rate decay for a timm backbone (timm's
            ``param_groups_layer_decay``): each layer's rate is ``lr * layer_decay**depth``
            counted from the top, so early, generic layers move least. None = off.
    """

    def __init__(
        self,
        net: Mapping[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        preprocessing: Mapping[str, Any] | None = None,
        channels_last: bool = False,
        compile: bool | str = False,
        scheduler_interval: str = "epoch",
        lr_scaling: Mapping[str, Any] | None = None,
        freeze_backbone: bool = False,
        unfreeze_backbone_at_epoch: int | None = None,
        head_lr: float | None = None,
        layer_decay: float | None = None,
        cache_features: bool = False,
    ) -> None:
        super().__init__()
        spec = _plain(net)
        self.net = create_model(**spec)
        preprocessing = with_normalization(self.net, _plain(preprocessing))
        if preprocessing and (spec.get("pretrained") or spec.get("pretrained_file")):
            _advise_input(self.net, spec["name"], preprocessing)
        self.save_hyperparameters({"net": spec, "preprocessing": preprocessing})
        self.fine_tuning = FineTuning(
            bool(freeze_backbone), unfreeze_backbone_at_epoch, head_lr, layer_decay,
            bool(cache_features),
        )  # fmt: skip
        self.feature_cache = FeatureCache() if cache_features else None
        if freeze_backbone:
            self.net.backbone.requires_grad_(False)
            if not (spec.get("pretrained") or spec.get("pretrained_file")):
                log.warning(
                    "model.freeze_backbone=true on a backbone without pretrained weights: the "
                    "head will learn from random features"
                )
        self.channels_last = bool(channels_last)
        # Kept out of the module tree (a plain attribute), so the state dict and checkpoints
        # keep the eager network's keys; the compiled one shares its parameters.
        self.__dict__["_compiled_net"] = (
            torch.compile(self.net, **compile_options(compile)) if compile else None
        )
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        if scheduler_interval not in ("epoch", "step"):
            raise DeepInsightError(
                f"model.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}"
            )
        self.scheduler_interval = scheduler_interval
        self.lr_scaling = LRScaling.from_config(_plain(lr_scaling))
        self.loss_fn = nn.BCEWithLogitsLoss()
        # Attribute names avoid "train"/"test", which nn.Module already uses.
        self.train_metrics = SplitMetrics("train/")
        self.val_metrics = SplitMetrics("val/")
        self.test_metrics = SplitMetrics("test/")
        # Chosen on the validation split at the end of every validation epoch, so each
        # checkpoint carries the temperature and threshold that belong to its own weights.
        self.decision_threshold = 0.5
        self.temperature = 1.0  # score = sigmoid(logit / temperature)
        self.val_calibration: dict[str, float] | None = None  # val ECE/Brier before and after
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.test_outputs: dict[str, torch.Tensor] | None = None
        self._test_batches: list[tuple[torch.Tensor, ...]] = []

    # -- the network --------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        testing = self._trainer is not None and self.trainer.testing
        if self.channels_last and not testing:
            images = images.contiguous(memory_format=torch.channels_last)
        net = self._compiled_net if self._compiled_net is not None and not testing else self.net
        return net(images)

    def _set_memory_format(self, channels_last: bool) -> None:
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=fmt)

    def on_fit_start(self) -> None:
        if self.channels_last:
            self._set_memory_format(True)
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.feature_cache is not None and getattr(datamodule, "augments_training", False):
            raise DeepInsightError(
                f"model.cache_features=true would freeze data.variant={datamodule.variant}'s "
                "random augmentation into the first epoch's features; use a variant without "
                "augmentation, or cache_features=false"
            )
        if self.fine_tuning.unfreeze_backbone_at_epoch is not None and self.trainer.world_size > 1:
            # DDP builds its gradient buckets once, from the parameters that need grads then.
            raise DeepInsightError(
                "model.unfreeze_backbone_at_epoch works on one device only; on several, train "
                "the frozen probe first and fine-tune from its checkpoint"
            )

    # -- a frozen backbone (linear probe, or the warm-up before fine-tuning) -------------
    def backbone_frozen(self) -> bool:
        return self.fine_tuning.frozen_at(self.current_epoch)

    def train(self, mode: bool = True):
        # A frozen backbone stays in eval mode whatever switches the module to training, so
        # BatchNorm keeps its pretrained statistics and dropout stays off.
        super().train(mode)
        if mode and self.backbone_frozen():
            self.net.backbone.eval()
        return self

    def on_train_epoch_start(self) -> None:
        # Lightning does not call train() at the start of fitting (the module keeps the mode it
        # was built in, and validation restores each submodule's), so the mode is set here.
        if not self.fine_tuning.freeze_backbone:
            return
        if self.backbone_frozen():
            self.net.backbone.eval()
            return
        if not next(self.net.backbone.parameters()).requires_grad:
            log.info("epoch %d: unfreezing the backbone", self.current_epoch)
        self.net.backbone.requires_grad_(True)
        self.net.backbone.train()

    def on_test_start(self) -> None:
        # Test scores must equal predict's, which runs the network in the default format.
        self._set_memory_format(False)

    def on_test_end(self) -> None:
        # Back to NHWC for what follows: the run's feature analysis is faster in it too.
        if self.channels_last:
            self._set_memory_format(True)

    def _shared_step(self, batch, metrics: SplitMetrics, split: str):
        images, targets, indices = batch
        if self.feature_cache is None:
            logits = self(images)
        else:
            features = self.feature_cache.features(split, indices, images, self._frozen_features)
            logits = self.net.head(features).squeeze(-1)
        return self._score_logits(logits, targets, indices, metrics, split)

    def _frozen_features(self, images: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return self.net.forward_features(images)

    def _score_logits(self, logits, targets, indices, metrics: SplitMetrics, split: str):
        logits = logits.float()
        loss = self.loss_fn(logits, targets.float())
        # Temperature scaling keeps the order of scores and the 0.5 decision (T > 0), so only
        # calibration-sensitive numbers move; test scores match predict's exactly.
        scores = scale_logits(logits.detach(), self.temperature)
        metrics.update(scores, targets)
        self.log(
            f"{split}/loss",
            loss,
            on_step=split == "train",
            on_epoch=True,
            prog_bar=split != "test",
            batch_size=len(targets),
            sync_dist=True,  # the mean over all ranks under DDP
        )
        return loss, scores, targets, indices, logits.detach()

    def _log_epoch_metrics(self, metrics: SplitMetrics) -> None:
        """The split's epoch metrics, computed once from their (synced) states, then reset.

        The same numbers as logging the Metric objects at every step with ``on_epoch=True``,
        without the per-step cost of nine ``self.log`` calls (see benchmarks/train_throughput.py).
        """
        if not any(m.update_count for m in metrics.labels.values()):
            return
        values = {**metrics.scores.compute(), **metrics.labels.compute()}
        metrics.scores.reset()
        metrics.labels.reset()
        self.log_dict(values, sync_dist=True)

    # -- training -----------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss, *_ = self._shared_step(batch, self.train_metrics, "train")
        return loss

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics(self.train_metrics)
        # From synced metric states: the same on every rank (sync_dist only tells Lightning).
        self.log_dict(self.train_metrics.confusion_cells("train/"), sync_dist=True)

    # -- validation: model selection and the decision threshold ---------------------------
    def validation_step(self, batch, batch_idx: int) -> None:
        *_, targets, _, logits = self._shared_step(batch, self.val_metrics, "val")
        self._val_outputs.append((logits, targets))

    def on_validation_epoch_end(self) -> None:
        self.log_dict(self.val_metrics.confusion_cells("val/"), sync_dist=True)
        self._log_epoch_metrics(self.val_metrics)
        if not self.trainer.sanity_checking and self._val_outputs:
            self._fit_temperature_and_threshold()
        self._val_outputs = []

    def _fit_temperature_and_threshold(self) -> None:
        """Temperature scaling on the validation logits, then the F1-max threshold after it."""
        logits, targets = (torch.cat(parts) for parts in zip(*self._val_outputs))
        if self.trainer.world_size > 1:
            # Every rank fits on all validation logits: one T and one threshold everywhere.
            logits, targets = (torch.cat(gather_all_tensors(t)) for t in (logits, targets))
        self.temperature, self.val_calibration = choose_temperature(logits, targets)
        curve = BinaryPrecisionRecallCurve(sync_on_compute=False)
        curve.update(scale_logits(logits, self.temperature).cpu(), targets.long().cpu())
        self.decision_threshold = f1_maximising_threshold(curve)
        self.log("val/threshold", self.decision_threshold, sync_dist=True)
        self.log("val/temperature", self.temperature, sync_dist=True)
        self.log("val/ece", self.val_calibration["ece_after"], sync_dist=True)
        self.log("val/ece_unscaled", self.val_calibration["ece_before"], sync_dist=True)

    # -- test: keep every prediction for the run directory -------------------------------
    def on_test_epoch_start(self) -> None:
        self._test_batches = []
        self.test_outputs = None

    def test_step(self, batch, batch_idx: int) -> None:
        # Full precision at test time, so the stored scores match predict/export exactly.
        with torch.autocast(device_type=self.device.type, enabled=False):
            images, targets, indices = batch
            # The head's input is kept too: the run's feature analysis (PCA, linear probe)
            # reads the test features from here instead of a second pass over the test split.
            # net(x) is head(forward_features(x)) by the DeepfakeNet contract.
            features = self.net.forward_features(images.float())
            logits = self.net.head(features).squeeze(-1)
            _, scores, targets, indices, _ = self._score_logits(
                logits, targets, indices, self.test_metrics, "test"
            )
        self._test_batches.append(
            (indices.detach(), scores.detach().float(), targets.detach(), features.detach().float())
        )

    def on_test_epoch_end(self) -> None:
        self.log_dict(self.test_metrics.confusion_cells("test/"), sync_dist=True)
        self._log_epoch_metrics(self.test_metrics)
        indices, scores, targets, features = (
            torch.cat(parts) for parts in zip(*self._test_batches)
        )
        if self.trainer.world_size > 1:
            # Every rank gets all predictions. Shares may differ in size (the DataModule gives
            # each rank a disjoint one); torchmetrics' gather pads and trims for that.
            indices, scores, targets, features = (
                torch.cat(gather_all_tensors(t)) for t in (indices, scores, targets, features)
            )
        # Sorted by image, each image once, even if some sampler repeated images across ranks.
        order = torch.argsort(indices)
        indices, scores, targets, features = (
            t[order] for t in (indices, scores, targets, features)
        )
        keep = torch.ones_like(indices, dtype=torch.bool)
        keep[1:] = indices[1:] != indices[:-1]
        self.test_outputs = {
            "index": indices[keep].cpu(),
            "score": scores[keep].cpu(),
            "label": targets[keep].long().cpu(),
            "features": features[keep].cpu(),
        }
        self._test_batches = []

    # -- optimisation ---------------------------------------------------------------------
    def configure_optimizers(self):
        factory = self.optimizer_factory or functools.partial(torch.optim.Adam, lr=1e-3)
        factor = self.lr_scaling.factor(self.global_batch_size())
        factory = scale_learning_rates(factory, factor)
        decay = bound_keywords(factory).get("weight_decay", 0.0)
        groups = self.fine_tuning.parameter_groups(self.net, decay)
        optimizer = factory(params=groups or self.parameters(), **self._fused_on_cuda(factory))
        scales = [group.get("lr_scale", 1.0) for group in optimizer.param_groups]
        if groups:
            base = optimizer.defaults["lr"]
            head_lr = self.fine_tuning.head_lr
            if head_lr is not None:  # the head's group is last; its rate is absolute
                scales[-1] = head_lr * factor / base
                optimizer.param_groups[-1]["lr_scale"] = scales[-1]
            for group, scale in zip(optimizer.param_groups, scales):
                group["lr"] = base * scale
        if self.scheduler_factory is None:
            return optimizer
        scheduler_factory = scale_learning_rates(self.scheduler_factory, factor)
        scheduler_factory = per_group_peak(scheduler_factory, scales)
        scheduler = scheduler_factory(optimizer=optimizer, **self._run_length(scheduler_factory))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }

    def global_batch_size(self) -> int | None:
        """Images per optimizer step over all devices (None when no datamodule tells)."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer else None
        batch_size = getattr(datamodule, "batch_size", None)
        if batch_size is None:
            return None
        trainer = self.trainer
        return int(batch_size) * trainer.world_size * trainer.accumulate_grad_batches

    def _run_length(self, factory: Callable[..., Any]) -> dict[str, int]:
        """``total_steps`` for a scheduler that needs it (OneCycleLR) and was not given it."""
        if not offers_unset(factory, "total_steps", "epochs"):
            return {}
        if self.scheduler_interval == "epoch":
            return {"total_steps": int(self.trainer.max_epochs)}
        return {"total_steps": int(self.trainer.estimated_stepping_batches)}

    def _fused_on_cuda(self, factory: Callable[..., Any]) -> dict[str, bool]:
        """``fused=True`` for an optimizer that offers it (Adam, AdamW, SGD), on CUDA only,
        unless the config chose: one kernel per step instead of one per parameter group."""
        if self.device.type != "cuda" or not offers_unset(factory, "fused", "foreach"):
            return {}
        return {"fused": True}

    # -- checkpoints carry what inference needs -----------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        spec = DetectorSpec.for_network(
            self.hparams["net"],
            self.hparams["preprocessing"],
            self.decision_threshold,
            THRESHOLD_RULE,
            temperature=self.temperature,
        )
        spec.write_to(checkpoint)
        if self.val_calibration is not None:
            checkpoint[VAL_CALIBRATION_KEY] = dict(self.val_calibration)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        threshold = DetectorSpec.stored_threshold(checkpoint)
        if threshold is not None:
            self.decision_threshold = threshold
        self.temperature = DetectorSpec.stored_temperature(checkpoint)
        self.val_calibration = checkpoint.get(VAL_CALIBRATION_KEY)
