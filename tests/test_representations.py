"""Input representations (data.input=pixels|npr|highpass): computed by the network, so training,
predict and the ONNX model apply them identically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.inference_fixtures import make_checkpoint, run_cli

from deepinsight.checkpoint_info import DetectorSpec
from deepinsight.errors import EXIT_OK, DeepInsightError
from deepinsight.export import main as export_main
from deepinsight.inference import load_detector
from deepinsight.lightning_module import DeepfakeClassifier
from deepinsight.models.representations import (
    DEFAULT_SCALES,
    FixedHighPass,
    NeighbourPixelResidual,
)


def test_npr_of_a_nearest_upsampled_image_is_zero_everywhere():
    small = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    upsampled = F.interpolate(small, scale_factor=2.0, mode="nearest")
    npr = NeighbourPixelResidual(scale=2.0)
    assert torch.equal(npr(upsampled), torch.zeros_like(upsampled))
    # Anything else keeps its within-block differences, scaled; block corners are zero.
    image = torch.rand(1, 1, 6, 6, generator=torch.Generator().manual_seed(1))
    out = npr(image)
    assert torch.equal(out[..., ::2, ::2], torch.zeros(1, 1, 3, 3))
    assert out[0, 0, 1, 1] == pytest.approx(2.0 * float(image[0, 0, 1, 1] - image[0, 0, 0, 0]))


def test_highpass_is_the_second_derivative_kernel_with_mirrored_borders():
    flat = torch.full((1, 3, 5, 5), 0.7)
    assert torch.allclose(FixedHighPass(2.0, 3)(flat), torch.zeros_like(flat), atol=1e-6)
    image = torch.rand(1, 1, 5, 5, generator=torch.Generator().manual_seed(2))
    kernel = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]]) / 4
    centre = float((image[0, 0, 1:4, 1:4].numpy() * kernel).sum())
    assert float(FixedHighPass(2.0, 1)(image)[0, 0, 2, 2]) == pytest.approx(2.0 * centre, abs=1e-6)


@pytest.mark.parametrize(("representation", "channels"), [("npr", 3), ("highpass", 1)])
def test_training_predict_and_onnx_score_the_same(tmp_path, capsys, representation, channels):
    preprocessing = {"input": representation, "input_scale": DEFAULT_SCALES[representation]}
    ckpt = make_checkpoint(tmp_path / "rep.ckpt", channels=channels, preprocessing=preprocessing)
    detector = load_detector(ckpt, device="cpu")  # what predict, evaluate and serve load
    assert detector.net.representation == (representation, DEFAULT_SCALES[representation])
    assert detector.spec.format_version == 3  # an older reader says "upgrade", never ignores it
    images = torch.rand(4, channels, 32, 32, generator=torch.Generator().manual_seed(3))
    # Training: the LightningModule builds its network from the same spec and preprocessing.
    module = DeepfakeClassifier(
        net={"name": "custom_cnn", "in_chans": channels},
        preprocessing={**detector.preprocessing},
    )
    module.net.load_state_dict(detector.net.state_dict())
    module.eval()
    with torch.no_grad():
        trained = module.net(images).numpy()
    np.testing.assert_allclose(trained, detector.logits(images), atol=1e-5)
    # Without the representation the same weights give other logits: it is really applied.
    module.net.set_representation("pixels")
    with torch.no_grad():
        assert np.abs(module.net(images).numpy() - trained).max() > 1e-3
    # The ONNX graph holds the representation: an outside runtime needs nothing else.
    onnx_path = tmp_path / "rep.onnx"
    code, _, err = run_cli(export_main, [f"ckpt={ckpt}", f"output={onnx_path}"], capsys)
    assert code == EXIT_OK, err
    exported = load_detector(onnx_path)
    assert exported.spec.preprocessing["input"] == representation
    np.testing.assert_allclose(exported.score(images), detector.score(images), atol=1e-5)


def test_the_config_names_the_representation_and_the_checkpoint_records_it(compose):
    from hydra.utils import instantiate

    cfg = compose(["data.input=npr"])
    assert cfg.data.variant == "rgb+npr"
    datamodule = instantiate(cfg.data)
    assert datamodule.preprocessing["input"] == "npr"
    ready = compose(["experiment=densenet121_npr"])
    assert (ready.model.net.name, ready.data.variant) == ("densenet121", "grayscale+npr")
    ready = compose(["experiment=densenet121_npr_blurjpeg"])  # the protocol's best (experiments/)
    assert (ready.model.net.name, ready.data.variant) == ("densenet121", "grayscale+blurjpeg+npr")
    cfg = compose(["data=grayscale", "augment=blur_jpeg", "data.input=highpass"])
    assert cfg.data.variant == "grayscale+blurjpeg+highpass"
    assert instantiate(cfg.data).preprocessing["channels"] == 1


def test_a_bad_representation_is_one_line(compose):
    with pytest.raises(Exception, match="unknown data.input 'sobel'"):
        compose(["data.input=sobel"]).data.variant  # noqa: B018
    spec = {"model": {"name": "custom_cnn", "in_chans": 3}, "threshold": 0.5,
            "preprocessing": {"image_size": 32, "channels": 3, "input": "fourier",
                              "input_scale": 1.0}}  # fmt: skip
    with pytest.raises(DeepInsightError, match="input representation 'fourier'.*upgrade"):
        DetectorSpec.from_dict({"format_version": 3, **spec}, "x.ckpt")
