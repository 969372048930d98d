"""The shortcut audit: a planted shortcut is found and named, a clean set passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deepinsight.audit.cli import audit_samples
from deepinsight.audit.features import file_features, jpeg_quality
from deepinsight.data.layouts import Sample

N = 80  # per class


def faces(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """Smooth random colour blobs: the same distribution for both classes."""
    out = []
    for _ in range(n):
        small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
        out.append(np.asarray(Image.fromarray(small).resize((32, 32), Image.BILINEAR)))
    return out


def write(folder: Path, arrays, fmt: str, label: int, quality: int = 90) -> list[Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    samples = []
    for i, array in enumerate(arrays):
        path = folder / f"{i}.{'png' if fmt == 'PNG' else 'jpg'}"
        kwargs = {"quality": quality} if fmt == "JPEG" else {}
        Image.fromarray(array).save(path, fmt, **kwargs)
        samples.append(Sample(path, label))
    return samples


def test_a_planted_format_shortcut_is_flagged_and_named(tmp_path):
    rng = np.random.default_rng(0)
    samples = write(tmp_path / "real", faces(rng, N), "JPEG", 0)
    samples += write(tmp_path / "fake", faces(rng, N), "PNG", 1)
    report = audit_samples(samples, n_bootstrap=100)
    fmt = report["groups"]["format"]
    assert fmt["flagged"] and fmt["auroc"] > 0.99
    assert report["shortcut_found"]
    line = next(v for v in report["verdict"] if v.startswith("SHORTCUT format"))
    assert "fakes all PNG, reals all JPEG" in line


def test_a_clean_set_passes(tmp_path):
    rng = np.random.default_rng(1)
    samples = write(tmp_path / "real", faces(rng, N), "JPEG", 0)
    samples += write(tmp_path / "fake", faces(rng, N), "JPEG", 1)
    report = audit_samples(samples, n_bootstrap=100)
    assert not report["shortcut_found"], report["verdict"]
    for group in ("compression", "size", "pixels"):
        assert abs(report["groups"][group]["auroc"] - 0.5) < 0.1
    assert report["verdict"][0].startswith("ok format")


def test_the_same_image_under_both_labels_is_reported(tmp_path):
    rng = np.random.default_rng(4)
    arrays = faces(rng, 30)
    samples = write(tmp_path / "real", arrays, "JPEG", 0)
    samples += write(tmp_path / "fake", arrays[:10] + faces(rng, 20), "JPEG", 1)
    report = audit_samples(samples, n_bootstrap=20)
    # 10 fakes copy 10 reals: 20 files have a twin in the other class.
    assert report["cross_class_duplicates"]["files"] == 20
    assert report["verdict"][-1].startswith("DUPLICATES: 20 files")


def test_header_features_and_the_jpeg_quality_estimate(tmp_path):
    array = faces(np.random.default_rng(2), 1)[0]
    for quality in (50, 75, 90):
        path = tmp_path / f"q{quality}.jpg"
        Image.fromarray(array).save(path, "JPEG", quality=quality, subsampling=2)
        with Image.open(path) as img:
            assert jpeg_quality(img) == pytest.approx(quality, abs=2)
        found = file_features(path)
        assert (found["format"], found["chroma_subsampling"]) == ("JPEG", "4:2:0")
        assert (found["width"], found["height"], found["has_exif"]) == (32, 32, 0)
    png = tmp_path / "x.png"
    Image.fromarray(array).save(png)
    assert file_features(png)["jpeg_quality"] is None


def test_unreadable_files_are_skipped_and_named(tmp_path):
    rng = np.random.default_rng(3)
    samples = write(tmp_path / "real", faces(rng, 6), "JPEG", 0)
    samples += write(tmp_path / "fake", faces(rng, 6), "JPEG", 1)
    broken = tmp_path / "fake" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    report = audit_samples([*samples, Sample(broken, 1)], n_bootstrap=20)
    assert [s["path"] for s in report["skipped_files"]] == [str(broken)]
    assert report["n"] == 12


def test_the_command_on_the_demo_data_finds_no_shortcut(tmp_path, capsys):
    from helpers.inference_fixtures import run_cli

    from deepinsight.audit.cli import main as audit_main
    from deepinsight.data.demo import ensure_demo_dataset

    root = ensure_demo_dataset()
    code, out, err = run_cli(
        audit_main,
        [f"data.root={root}", f"output={tmp_path}", "num_workers=2", "n_bootstrap=100"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert len(out.strip().splitlines()) == 4 and "SHORTCUT" not in out
    report = json.loads((tmp_path / "audit.json").read_text())
    # Every split (2,400 images). The test split alone (400) comes out at 0.64 for the pixel
    # statistics, above the line: docs/evaluation.md, "Shortcut audit".
    assert report["n"] == 2400 and not report["shortcut_found"]
    assert (tmp_path / "audit.md").read_text().startswith("# Shortcut audit")


def test_bad_arguments_are_one_line(tmp_path, capsys):
    from helpers.inference_fixtures import run_cli

    from deepinsight.audit.cli import main as audit_main

    code, _, err = run_cli(audit_main, [f"data.root={tmp_path}", "split=everything"], capsys)
    assert code == 2 and "split must be one of" in err and err.count("\n") == 1


def test_train_runs_the_audit_first_when_asked(compose, tiny_dataset, tmp_path):
    from deepinsight.train import train

    run = tmp_path / "run"
    cfg = compose(
        ["model=custom_cnn", f"data.root={tiny_dataset}", "data.image_size=16",
         "data.batch_size=4", "trainer=cpu", "trainer.fast_dev_run=true", "logger=none",
         "analysis.enabled=false", "audit=true"],
        run_dir=run,
    )  # fmt: skip
    assert train(cfg)["status"] == "completed"
    report = json.loads((run / "audit.json").read_text())
    assert report["n"] == 2 * (24 + 12 + 12) and set(report["groups"]) == {
        "format", "compression", "size", "pixels",
    }  # fmt: skip
    assert (run / "audit.md").is_file()
