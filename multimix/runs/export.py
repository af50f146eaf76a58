"""Export a trained MultiMix checkpoint as an ONNX or TorchScript graph (``multimix export``).

The graph holds the whole model, saliency bridge included: the saliency's input gradient is
written out as layers (:mod:`multimix.models.explicit_saliency`), so the runtime needs no
autograd. Input ``image``: ``(N, 1, S, S)`` float32 at the training size ``S``, the image read
and preprocessed as ``multimix predict`` does (grey in ``[0, 1]``, resized to ``S x S``, rounded
to float16, the run's intensity transform; every step as parameters in the description's
``input.preprocessing``, :func:`multimix.prediction.preprocess.preprocessing_steps`). Outputs
``class_probs`` ``(N, classes)`` (softmax) and ``lung_probs`` ``(N, 1, S, S)`` (sigmoid). ``N``
is free; ``S`` is fixed.

Beside the graph, ``<graph>.json`` (``model.onnx.json``) says what a deployment needs: classes, decision threshold
and where it came from, image size and intensity, the mask threshold, and the check against
PyTorch.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from multimix.models.explicit_saliency import ExplicitSaliencyNet
from multimix.models.multimix import MultiMixNet
from multimix.prediction.predictor import Predictor
from multimix.prediction.preprocess import preprocessing_steps
from multimix.runs.folder import run_folder
from multimix.utils.atomic import atomic_write, atomic_write_text, write_all
from multimix.utils.checkpoints import check_output_path

logger = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
INPUT_NAME, OUTPUT_NAMES = "image", ("class_probs", "lung_probs")
TOLERANCE = 1e-4  # largest difference allowed between the exported graph's outputs and PyTorch's
CHECK_IMAGES = 2


@dataclass
class ExportResult:
    """Where the graph and its description went, and how far its outputs are from PyTorch's."""

    graph: Path
    description: Path
    max_difference: dict[str, float] | None  # None when no runtime was available to check


def export_checkpoint(
    checkpoint: str | Path, fmt: str, out: str | Path | None = None, *, force: bool = False
) -> ExportResult:
    """Export ``checkpoint`` as ``fmt`` (``onnx`` or ``torchscript``) and check the graph's
    outputs against PyTorch's on seeded random images (ONNX: with onnxruntime when installed).

    Raises:
        ValueError: an unknown format, a network the export cannot express, or outputs further
            than :data:`TOLERANCE` from PyTorch's.
        ImportError: ``onnx``/``onnxscript`` missing for ONNX (the ``export`` extra).
    """
    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    predictor = Predictor(checkpoint, device="cpu")
    if not isinstance(predictor.model, MultiMixNet):
        raise ValueError(f"{checkpoint}: export covers MultiMix-family networks; this is a {predictor.name}")
    if predictor.model.cls_input != "image":
        # the box comes from a connected-component clean-up of the mask, which no graph format expresses
        raise ValueError(
            f"{checkpoint}: a model that classifies its own lung crop (model.cls_input lung_crop) is not exported"
        )
    graph_net = ExplicitSaliencyNet(predictor.model)
    path = (
        check_output_path(out, inputs=(checkpoint,), force=force)
        if out
        else run_folder(checkpoint) / "export" / f"model{FORMATS[fmt]}"
    )
    size = predictor.image_size
    images = torch.rand(CHECK_IMAGES, 1, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = _reference_outputs(predictor.model, images)
    if fmt == "onnx":
        differences = _export_onnx(graph_net, images, path, reference)
    else:
        differences = _export_torchscript(graph_net, images, path, reference)
    if differences is not None and max(differences.values()) > TOLERANCE:
        raise ValueError(f"the exported graph's outputs differ from PyTorch's by {differences} (> {TOLERANCE})")
    description = path.with_name(f"{path.name}.json")
    atomic_write_text(description, json.dumps(_description(predictor, fmt, path, differences), indent=2))
    return ExportResult(path, description, differences)


def _reference_outputs(network: MultiMixNet, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What the PyTorch network gives (autograd saliency): the numbers the graph must match."""
    out = network(images)
    return torch.softmax(out.required("cls_logits"), dim=1), torch.sigmoid(out.required("seg_logits"))


def _differences(outputs: tuple[Any, Any], reference: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
    return {
        name: float((torch.as_tensor(got) - expected).abs().max())
        for name, got, expected in zip(OUTPUT_NAMES, outputs, reference, strict=True)
    }


def _export_onnx(
    graph_net: ExplicitSaliencyNet, images: torch.Tensor, path: Path, reference: tuple[torch.Tensor, torch.Tensor]
) -> dict[str, float] | None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; a clear message beats its traceback)
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise ImportError(f'ONNX export needs onnx and onnxscript: pip install "multimix[export]" ({err})') from None
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter reports each of its passes
        program = torch.onnx.export(
            graph_net,
            (images,),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={"image": {0: torch.export.Dim("batch")}},
            dynamo=True,
            verbose=False,
        )
    assert program is not None
    atomic_write(path, lambda handle: write_all(handle, program.model_proto.SerializeToString()))
    try:
        import onnxruntime
    except ImportError:
        logger.warning("warning: onnxruntime is not installed; the exported graph was not checked against PyTorch")
        return None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return _differences(tuple(session.run(list(OUTPUT_NAMES), {INPUT_NAME: images.numpy()})), reference)


def _export_torchscript(
    graph_net: ExplicitSaliencyNet, images: torch.Tensor, path: Path, reference: tuple[torch.Tensor, torch.Tensor]
) -> dict[str, float]:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice and constant-shape notes
        traced = torch.jit.trace(graph_net, (images,), check_trace=False)
        atomic_write(path, lambda handle: torch.jit.save(traced, handle))
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        return _differences(loaded(images), reference)


def _description(predictor: Predictor, fmt: str, path: Path, differences: dict[str, float] | None) -> dict[str, Any]:
    cfg = predictor.config
    return {
        "graph": path.name,
        "format": fmt,
        "model": predictor.name,
        "checkpoint": str(predictor.checkpoint),
        "input": {
            "name": INPUT_NAME,
            "shape": ["N", 1, predictor.image_size, predictor.image_size],
            "dtype": "float32",
            "preprocessing": preprocessing_steps(predictor.image_size, cfg.data.intensity),
        },
        "outputs": {
            "class_probs": {"shape": ["N", len(predictor.class_names)], "classes": list(predictor.class_names)},
            "lung_probs": {"shape": ["N", 1, predictor.image_size, predictor.image_size]},
        },
        "decision": {
            "positive_class": predictor.class_names[-1],
            "operating_point": predictor.operating_point.to_dict(),
            "lung_threshold": predictor.seg_threshold,
            "clean_masks": predictor.clean_masks,
        },
        "check": {"max_abs_difference_to_pytorch": differences, "tolerance": TOLERANCE},
    }
