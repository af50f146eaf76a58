"""Use the MultiMix network in your own code: build it, run one forward pass, save the saliency.

    python examples/use_model.py --out saliency.png                       # untrained weights
    python examples/use_model.py --checkpoint runs/<run>/checkpoints/best.pt --out saliency.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from multimix.data.sources.synthetic import generate_arrays
from multimix.models import available_models, build_model
from multimix.training import load_trained_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="saliency.png", help="where to write the figure")
    parser.add_argument("--size", type=int, default=128, help="image side (a multiple of 16)")
    parser.add_argument("--checkpoint", help="a run's best.pt; without it the weights are untrained")
    args = parser.parse_args()

    print("variants:", ", ".join(available_models()))
    if args.checkpoint:
        model, cfg = load_trained_model(args.checkpoint)
        args.size = cfg.data.image_size  # evaluate at the size the model was trained on
        state = "trained"
    else:
        model = build_model("multimix").eval()  # paper defaults: widths 16-256, InstanceNorm, 2 classes
        state = "untrained"

    images, masks, labels = generate_arrays(1, site="chex", image_size=args.size, seed=7, pneumonia_fraction=1.0)
    x = torch.from_numpy(images).unsqueeze(1)  # (B, 1, H, W) in [0, 1]
    with torch.no_grad():  # the bridge still computes its saliency: it enables grad for the input only
        out = model(x)

    probs = out.cls_logits.softmax(dim=1)[0]
    print(f"seg_logits {tuple(out.seg_logits.shape)}, cls_logits {tuple(out.cls_logits.shape)}, "
          f"saliency {tuple(out.saliency.shape)}; p(pneumonia) = {probs[1]:.3f} ({state} weights)")

    panels = [(images[0], "image"), (out.saliency[0, 0].numpy(), "saliency"),
              (torch.sigmoid(out.seg_logits[0, 0]).numpy(), f"lung probability ({state})")]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.2))
    for ax, (panel, title) in zip(axes, panels):
        ax.imshow(panel, cmap="gray" if title == "image" else "magma")
        ax.set_title(title)
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
