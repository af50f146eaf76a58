"""Classifying inside the lungs: boxes from the network's own masks, crops, and the model option."""

import pytest
import torch

from multimix.models import build_model
from multimix.models.lung_crop import crop_to_boxes, lung_boxes


def _logits_of(mask: torch.Tensor) -> torch.Tensor:
    return (mask.float() * 20 - 10)[:, None]


def test_the_box_holds_both_lungs_with_its_margin_and_no_edge_air():
    mask = torch.zeros(2, 64, 64, dtype=torch.bool)
    mask[0, 10:50, 12:28] = True  # right lung
    mask[0, 12:46, 36:52] = True  # left lung
    mask[0, 20:40, 0:3] = True  # air at the side edge: not lung
    boxes = lung_boxes(_logits_of(mask), margin=0.1)
    # lungs span x 12..52 (40 px) and y 10..50 (40 px): 4 px of margin on every side
    torch.testing.assert_close(boxes[0], torch.tensor([8.0, 6.0, 56.0, 54.0]))
    torch.testing.assert_close(boxes[1], torch.tensor([0.0, 0.0, 64.0, 64.0]))  # no lung: the whole image
    with pytest.raises(ValueError, match="margin"):
        lung_boxes(_logits_of(mask), margin=1.0)


def test_a_crop_is_the_box_resampled_to_the_image_size():
    image = torch.zeros(1, 1, 32, 32)
    image[..., 8:24, 8:24] = 1.0
    crop = crop_to_boxes(image, torch.tensor([[8.0, 8.0, 24.0, 24.0]]))
    # the bright square fills the crop (its outermost pixels blend with the dark beside the box)
    assert crop.shape == (1, 1, 32, 32) and crop[..., 1:-1, 1:-1].min() > 0.99 and crop.mean() > 0.9
    whole = crop_to_boxes(image, torch.tensor([[0.0, 0.0, 32.0, 32.0]]))
    torch.testing.assert_close(whole[..., 1:-1, 1:-1], image[..., 1:-1, 1:-1], atol=0.3, rtol=0)
    assert abs(float(whole.mean() - image.mean())) < 0.02


def test_a_lung_crop_model_classifies_the_crop_in_forward_and_classify_alike():
    torch.manual_seed(0)
    model = build_model("multimix", widths=(4, 8), cls_input="lung_crop").eval()
    images = torch.rand(3, 1, 32, 32)
    out = model(images, return_features=True)
    crops = crop_to_boxes(images, lung_boxes(out.seg_logits, margin=model.crop_margin))
    expected = model.encoder.classify(model.encoder(crops)[-1])
    torch.testing.assert_close(out.cls_logits, expected)
    torch.testing.assert_close(model.classify(images).cls_logits, expected)
    plain = build_model("multimix", widths=(4, 8))
    plain.load_state_dict(model.state_dict())
    assert plain.cls_input == "image" and model.constructor_kwargs()["cls_input"] == "lung_crop"
    # the class loss still reaches the input pixels inside the box, and every encoder weight
    model.train()
    images.requires_grad_(True)
    model.classify(images).cls_logits.sum().backward()
    assert images.grad.abs().sum() > 0 and model.encoder.head is not None
    with pytest.raises(ValueError, match="both heads"):
        build_model("umtls", widths=(4, 8), seg_head=False, bridge=False, cls_input="lung_crop")
    with pytest.raises(ValueError, match="cls_input must be one of"):
        build_model("multimix", widths=(4, 8), cls_input="lungs")


def test_a_lung_crop_run_trains_predicts_and_refuses_export(tmp_path):
    from multimix.config import load_config
    from multimix.prediction import Predictor
    from multimix.runs.export import export_checkpoint
    from multimix.runs.train import run_training

    from helpers import tiny_config

    out = tmp_path / "run"
    run_training(tiny_config(train__steps=2, model__cls_input="lung_crop", train__out=str(out)), progress=False)
    best = out / "checkpoints" / "best.pt"
    predictor = Predictor(best, device="cpu")
    assert predictor.model.cls_input == "lung_crop"
    prediction = predictor.predict([torch.rand(40, 48).numpy()])[0]
    assert prediction.probabilities.shape == (2,) and prediction.lung_mask.shape == (40, 48)
    with pytest.raises(ValueError, match="lung crop"):
        export_checkpoint(best, "torchscript", tmp_path / "m.pt")
    with pytest.raises(ValueError, match="model.cls_input must be one of"):
        load_config(None, {"model.cls_input": "crop"})
