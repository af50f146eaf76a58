"""Use the MultiMix network in your own code: build it, run one forward pass, save the saliency.

The PNG shows the image, the saliency map and the predicted lung probability side by side.

    python examples/use_model.py --out saliency.png                       # untrained weights
    python examples/use_model.py --checkpoint runs/<run>/checkpoints/best.pt --out saliency.png
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from skimage import io as skio

from multimix.data.synthetic import generate_arrays
from multimix.models import available_models, build_model, load_trained_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="saliency.png", help="where to write the figure")
    parser.add_argument("--size", type=int, default=128, help="image side (a multiple of 16)")
    parser.add_argument("--checkpoint", help="a run's best.pt; without it the weights are untrained")
    args = parser.parse_args()

    print("variants:", ", ".join(available_models()))
    if args.checkpoint:
        model, cfg = load_trained_model(args.checkpoint)
        if not (model.has_seg_head and model.has_bridge):
            parser.error(
                f"{args.checkpoint}: this example shows the saliency bridge; it needs a MultiMix or UMTLS model"
            )
        args.size = cfg.data.image_size  # evaluate at the size the model was trained on
        state = "trained"
    else:
        model = build_model("multimix").eval()  # the training defaults: widths 16-128, InstanceNorm, 2 classes
        state = "untrained"

    images, masks, labels = generate_arrays(1, site="chex", image_size=args.size, seed=7, pneumonia_fraction=1.0)
    x = torch.from_numpy(images).unsqueeze(1)  # (B, 1, H, W) in [0, 1]
    with torch.no_grad():  # the bridge still computes its saliency: it enables grad for the input only
        out = model(x)

    probs = out.cls_logits.softmax(dim=1)[0]
    print(
        f"seg_logits {tuple(out.seg_logits.shape)}, cls_logits {tuple(out.cls_logits.shape)}, "
        f"saliency {tuple(out.saliency.shape)}; p(pneumonia) = {probs[1]:.3f} ({state} weights)"
    )

    # image | saliency | lung probability, side by side, as one 8-bit grayscale PNG
    panels = [images[0], out.saliency[0, 0].numpy(), torch.sigmoid(out.seg_logits[0, 0]).numpy()]
    gap = np.ones((args.size, 4), np.float32)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    zoom = max(1, 256 // args.size)  # small training sizes are enlarged so the PNG is readable
    strip = strip.repeat(zoom, axis=0).repeat(zoom, axis=1)
    skio.imsave(args.out, (np.clip(strip, 0, 1) * 255).astype(np.uint8), check_contrast=False)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
