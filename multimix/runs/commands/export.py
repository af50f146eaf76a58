"""Export a trained model for serving outside Python: ONNX or TorchScript, saliency bridge inside.

    multimix export --checkpoint runs/a/checkpoints/best.pt                        # runs/a/export/model.onnx
    multimix export --checkpoint runs/a/checkpoints/best.pt --format torchscript --out model.pt

Input `image` (N, 1, S, S): the image as `multimix predict` preprocesses it, at the training
size S. Outputs `class_probs` (N, classes) and `lung_probs` (N, 1, S, S). The graph's outputs
are checked against PyTorch's (ONNX with onnxruntime when installed); `<graph>.json` beside it
gives classes, decision threshold and preprocessing. ONNX needs `pip install "multimix[export]"`.
"""

from __future__ import annotations

import argparse

from multimix.runs.cli import run_main
from multimix.runs.export import FORMATS, TOLERANCE, export_checkpoint
from multimix.runs.flags import add_debug_flag, add_force_flag


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a MultiMix-family run's best.pt (or an adapted copy)")
    parser.add_argument("--format", choices=list(FORMATS), default="onnx", help="graph format (default: onnx)")
    parser.add_argument("--out", help="the graph file (default: <run>/export/model.onnx or model.pt)")
    add_force_flag(parser)
    add_debug_flag(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        result = export_checkpoint(args.checkpoint, args.format, args.out, force=args.force)
        print(f"graph: {result.graph}")
        print(f"description: {result.description}")
        if result.max_difference is None:
            print("not checked against PyTorch: onnxruntime is not installed")
        else:
            worst = ", ".join(f"{name} {value:.1e}" for name, value in result.max_difference.items())
            print(f"largest difference to PyTorch: {worst} (tolerance {TOLERANCE:g})")
        return 0

    return run_main(body, debug=args.debug)
