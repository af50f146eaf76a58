"""Use the MultiMix network in your own code: build it, run one forward pass, save the saliency.

    python examples/use_model.py --out saliency.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from multimix.data.sources.synthetic import generate_arrays
from multimix.models import available_models, build_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="saliency.png", help="where to write the figure")
    parser.add_argument("--size", type=int, default=128, help="image side (a multiple of 16)")
    args = parser.parse_args()

    print("variants:", ", ".join(available_models()))
    model = build_model("multimix").eval()  # paper defaults: widths 16-256, InstanceNorm, 2 classes

    images, masks, labels = generate_arrays(1, site="jsrt", image_size=args.size, seed=7, pneumonia_fraction=1.0)
    x = torch.from_numpy(images).unsqueeze(1)  # (B, 1, H, W) in [0, 1]
    with torch.no_grad():  # the bridge still computes its saliency: it enables grad for the input only
        out = model(x)

    probs = out.cls_logits.softmax(dim=1)[0]
    print(f"seg_logits {tuple(out.seg_logits.shape)}, cls_logits {tuple(out.cls_logits.shape)}, "
          f"saliency {tuple(out.saliency.shape)}; p(pneumonia) = {probs[1]:.3f} (untrained weights)")

    panels = [(images[0], "image"), (out.saliency[0, 0].numpy(), "saliency"),
              (torch.sigmoid(out.seg_logits[0, 0]).numpy(), "lung probability (untrained)")]
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
