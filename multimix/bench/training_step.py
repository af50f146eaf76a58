"""Speed of the MultiMix training step and of inference with saliency, against the original way.

Three training steps on the same weights and the same five-stream batch:

* ``naive``: the original implementation's step, re-implemented faithfully: the saliency from a
  separate eval-mode forward/backward of the encoder over *all* images (``.backward()``, so
  parameter gradients too), then the full encoder + bridge + decoder on every image,
  classification images included, in float32, with the original loop's ``gc.collect()`` per step;
* ``default``: :class:`~multimix.methods.MultiMixMethod` as shipped (classification images through
  the encoder only; one encoder pass per segmentation image serving class head, saliency and
  decoder; the saliency's backward computes the input gradient only);
* ``fast``: ``default`` plus every speed option that helps: bfloat16 autocast (CPUs with AVX-512
  BF16 / AMX, or mixed precision on CUDA), channels-last layout on CUDA (slower on CPU),
  optionally ``torch.compile`` (slower on CPU here, so off unless asked for).

Both implementations are scored by the same loss code (:meth:`MultiMixMethod.loss_from_logits`),
and :func:`check_agreement` verifies they compute the same loss and segmentation.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from multimix.data.keys import (
    CLS_S,
    CLS_U,
    CLS_W,
    CLS_X,
    CLS_Y,
    IMAGE_KEYS,
    SEG_U,
    SEG_X,
    SEG_Y,
    Batch,
)
from multimix.data.synthetic import generate_arrays
from multimix.engine.trainer import move_to
from multimix.methods import MultiMixMethod
from multimix.models import MultiMixNet, build_model, normalise_per_image
from multimix.utils import environment
from multimix.utils.precision import bf16_is_fast, cpu_matmul_speed

STREAM_COUNT = 5  # seg_x, seg_u, cls_x, cls_w, cls_s


# ------------------------------------------------------------------------------ inputs
def make_batch(image_size: int, batch_size: int, seed: int = 0) -> Batch:
    """A five-stream training batch of synthetic chest X-rays (``batch_size`` per stream)."""
    images, masks, labels = generate_arrays(4 * batch_size, image_size=image_size, seed=seed)
    t = torch.from_numpy(images).unsqueeze(1)
    b = batch_size
    strong = t[3 * b :] + 0.05 * torch.randn(t[3 * b :].shape, generator=torch.Generator().manual_seed(seed))
    return {
        SEG_X: t[:b],
        SEG_Y: torch.from_numpy(masks[:b]).unsqueeze(1).float(),
        SEG_U: t[b : 2 * b],
        CLS_X: t[2 * b : 3 * b],
        CLS_Y: torch.from_numpy(labels[2 * b : 3 * b]),
        CLS_W: t[3 * b :],
        CLS_S: strong.clamp(0, 1),
    }


def benchmark_model(
    seed: int = 0, *, dropout: float = 0.25, widths: tuple[int, ...] = (16, 32, 64, 128, 256)
) -> MultiMixNet:
    """The paper's MultiMix network (5 levels, 16-256 channels) with fixed weights."""
    torch.manual_seed(seed)
    return build_model("multimix", widths=widths, dropout=dropout)


# ------------------------------------------------------------------------------ the original way
def naive_saliency(model: MultiMixNet, images: torch.Tensor) -> torch.Tensor:
    """The original saliency: a separate eval-mode forward and ``.backward()`` of the top class score."""
    was_training = model.training
    model.eval()
    x = images.detach().clone().requires_grad_(True)
    logits = model.encoder.classify(model.encoder(x)[-1])
    logits.max(dim=1).values.sum().backward()  # fills parameter .grad too, as the original did
    saliency = normalise_per_image(cast(torch.Tensor, x.grad).abs().amax(dim=1, keepdim=True))
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return saliency.detach()


def naive_forward(model: MultiMixNet, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Saliency pass, then the full network (encoder, class head, bridge, decoder) on ``images``."""
    bridge, decoder = _bridge_and_decoder(model)
    saliency = naive_saliency(model, images)
    features = model.encoder(images)
    cls_logits = model.encoder.classify(features[-1])
    extra = bridge(images, saliency, size=tuple(features[-1].shape[-2:]))
    return decoder(features, extra), cls_logits


def _bridge_and_decoder(model: MultiMixNet) -> tuple[nn.Module, nn.Module]:
    if model.bridge is None or model.decoder is None:
        raise ValueError("the original step needs a model with the saliency bridge and a decoder (multimix, umtls)")
    return model.bridge, model.decoder


def naive_loss(model: MultiMixNet, method: MultiMixMethod, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """The original step's loss: every image of every stream through :func:`naive_forward`."""
    seg_views, cls_views = method.segmentation_views(batch), method.classification_views(batch)
    n_seg = sum(v.shape[0] for v in seg_views)
    seg_logits, cls_logits = naive_forward(model, torch.cat([*seg_views, *cls_views]))
    return method.loss_from_logits(batch, cls_logits[n_seg:], seg_logits[:n_seg])


def naive_predict(model: MultiMixNet, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Original inference: the saliency pass, then a second full forward with autograd still
    recording (the original evaluated with gradients enabled, since the model needs them)."""
    bridge, decoder = _bridge_and_decoder(model)
    saliency = naive_saliency(model, images)
    features = model.encoder(images)
    cls_logits = model.encoder.classify(features[-1])
    seg_logits = decoder(features, bridge(images, saliency, size=tuple(features[-1].shape[-2:])))
    return seg_logits.detach(), cls_logits.detach(), saliency


# ------------------------------------------------------------------------------ agreement
@dataclass
class Agreement:
    loss_naive: float
    loss_ours: float
    max_seg_logit_difference: float
    max_gradient_difference: float  # relative to the largest gradient entry

    @property
    def ok(self) -> bool:
        return (
            abs(self.loss_naive - self.loss_ours) <= 1e-4
            and self.max_seg_logit_difference <= 1e-4
            and self.max_gradient_difference <= 1e-4
        )


def paper_method() -> MultiMixMethod:
    """The method of the paper's step: every term at full weight from the first step."""
    return MultiMixMethod(ssl_rampup_steps=0)


def _gradients(model: MultiMixNet, loss: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([cast(torch.Tensor, p.grad).flatten() for p in model.parameters()])


def check_agreement(image_size: int = 64, batch_size: int = 2, seed: int = 0) -> Agreement:
    """Same weights, same batch, float32, dropout off (it is the only random layer): the naive
    and our step must give the same loss, segmentation logits and parameter gradients."""
    model = benchmark_model(seed, dropout=0.0).train()
    method = paper_method()
    batch = make_batch(image_size, batch_size, seed)
    loss_naive, _ = naive_loss(model, method, batch)
    grad_naive = _gradients(model, loss_naive)
    loss_ours, _ = method.train_step(model, batch)
    grad_ours = _gradients(model, loss_ours)
    images = torch.cat(method.segmentation_views(batch))
    with torch.no_grad():
        ours_seg = model(images).seg_logits
    naive_seg, _ = naive_forward(model, images)
    difference = float((naive_seg - ours_seg).detach().abs().max())
    gradient = float((grad_naive - grad_ours).abs().max() / grad_naive.abs().max())
    return Agreement(float(loss_naive.detach()), float(loss_ours.detach()), difference, gradient)


# ------------------------------------------------------------------------------ measuring
class PeakRSS:
    """Peak resident memory while the block runs, sampled from ``/proc/self/statm`` every 5 ms
    (the process-lifetime ``ru_maxrss`` where ``/proc`` is missing)."""

    def __enter__(self) -> PeakRSS:
        self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as handle:
                return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    @property
    def mib(self) -> float:
        return self.peak / 2**20


@dataclass
class Timing:
    """One measured variant."""

    ms_per_call: float
    images_per_second: float
    peak_rss_mib: float
    cuda_peak_mib: float | None = None
    gflop_per_call: float | None = None  # counted floating-point work of one call (convolutions, matmuls)

    def share_of_peak(self, peak_gflops: float) -> float | None:
        """Achieved GFLOP/s over ``peak_gflops`` (the machine's matmul peak): how well the arithmetic
        units are used, comparable across image sizes where img/s is not."""
        if self.gflop_per_call is None or peak_gflops <= 0:
            return None
        return self.gflop_per_call / (self.ms_per_call / 1000) / peak_gflops


def counted_gflop(call: Callable[[], None]) -> float:
    """The floating-point work of one ``call`` (forward and backward convolutions and matrix
    products, by torch's FLOP formulas), in GFLOP.

    torch's ``FlopCounterMode`` tracks modules with backward hooks, which ``autograd.grad`` (the
    saliency bridge) does not support, so the operators are counted here without module tracking.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Counter() as counter:
        call()
    return counter.total / 1e9


def matmul_peak_gflops(size: int = 1024, repeats: int = 5) -> float:
    """float32 GFLOP/s of a large square matrix product on the CPU: the reference for
    :meth:`Timing.share_of_peak`."""
    return cpu_matmul_speed(size, repeats).fp32_gflops


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    call: Callable[[], None], images_per_call: int, device: torch.device, *, warmup: int, repeats: int
) -> Timing:
    """Median wall time of ``call`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        call()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    with PeakRSS() as rss:
        for _ in range(repeats):
            started = time.perf_counter()
            call()
            _sync(device)
            times.append(time.perf_counter() - started)
    ms = 1000 * float(np.median(times))
    cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return Timing(ms, images_per_call / (ms / 1000), rss.mib, cuda)


@dataclass(frozen=True)
class SpeedOptions:
    """The ``fast`` variant's switches."""

    autocast: torch.dtype | None = None
    channels_last: bool = False
    compile: bool = False


def fast_options(device: torch.device, *, compile: bool = False) -> SpeedOptions:
    autocast = (
        (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
        if device.type == "cuda"
        else (torch.bfloat16 if bf16_is_fast(device) else None)
    )
    # channels-last pays off on GPUs; on CPUs (oneDNN, 16-256 channels) it measured slower
    return SpeedOptions(autocast=autocast, channels_last=device.type == "cuda", compile=compile)


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """Autocast to ``dtype`` on ``device``, or nothing when ``dtype`` is None."""
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _prepared(model: MultiMixNet, options: SpeedOptions) -> MultiMixNet:
    if options.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if options.compile:
        # the saliency's autograd.grad stays eager; the conv stacks around it are compiled
        model.encoder = torch.compile(model.encoder)  # type: ignore[assignment]
        model.decoder = torch.compile(model.decoder)  # type: ignore[assignment]
    return model


def train_step_call(
    kind: str,
    model: MultiMixNet,
    method: MultiMixMethod,
    batch: Batch,
    device: torch.device,
    options: SpeedOptions = SpeedOptions(),
) -> Callable[[], None]:
    """One optimisation step (forward, backward, Adam update) of the ``naive`` or our step."""
    model = _prepared(model.to(device).train(), options)
    batch = move_to(batch, device, channels_last=options.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = (
        (lambda: naive_loss(model, method, batch)) if kind == "naive" else (lambda: method.train_step(model, batch))
    )

    def step() -> None:
        if kind == "naive":
            gc.collect()  # the original loop collected garbage (and emptied the CUDA cache) every step
        with autocast_context(device, options.autocast):
            loss, _ = forward()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def predict_call(
    kind: str, model: MultiMixNet, images: torch.Tensor, device: torch.device, options: SpeedOptions = SpeedOptions()
) -> Callable[[], None]:
    """Inference with saliency: the original two-pass way, or our single pass."""
    model = _prepared(model.to(device).eval(), options)
    x = move_to({"x": images}, device, channels_last=options.channels_last)["x"]

    def predict() -> None:
        with autocast_context(device, options.autocast):
            if kind == "naive":
                naive_predict(model, x)
            else:
                with torch.no_grad():
                    model(x)

    return predict


# ------------------------------------------------------------------------------ the suite
@dataclass
class BenchmarkSettings:
    sizes: tuple[int, ...] = (128, 256)
    batch_size: int = 4  # per stream
    warmup: int = 2
    repeats: int = 5
    compile: bool = False
    device: str = "cpu"
    seed: int = 0


def run_training_benchmark(size: int, settings: BenchmarkSettings) -> dict[str, Timing]:
    """``naive``, ``default`` and ``fast`` training steps at ``size``; fresh equal weights for each."""
    device = torch.device(settings.device)
    batch = make_batch(size, settings.batch_size, settings.seed)
    images = STREAM_COUNT * settings.batch_size
    variants = {
        "naive": ("naive", SpeedOptions()),
        "default": ("ours", SpeedOptions()),
        "fast": ("ours", fast_options(device, compile=settings.compile)),
    }
    timings = {}
    for name, (kind, options) in variants.items():
        step = train_step_call(kind, benchmark_model(settings.seed), paper_method(), batch, device, options)
        timings[name] = measure(step, images, device, warmup=settings.warmup, repeats=settings.repeats)
        timings[name].gflop_per_call = counted_gflop(step)
    return timings


def run_inference_benchmark(size: int, settings: BenchmarkSettings) -> dict[str, Timing]:
    """Latency at batch 1 (naive, ours, ours fast) and throughput at batch 16 (ours fast)."""
    device = torch.device(settings.device)
    images = torch.from_numpy(generate_arrays(16, image_size=size, seed=settings.seed)[0]).unsqueeze(1)
    fast = fast_options(device, compile=settings.compile)
    runs = {
        "naive_b1": ("naive", images[:1], SpeedOptions()),
        "ours_b1": ("ours", images[:1], SpeedOptions()),
        "fast_b1": ("ours", images[:1], fast),
        "fast_b16": ("ours", images, fast),
    }
    timings = {}
    for name, (kind, x, options) in runs.items():
        call = predict_call(kind, benchmark_model(settings.seed), x, device, options)
        timings[name] = measure(call, len(x), device, warmup=settings.warmup, repeats=settings.repeats)
    return timings


def machine_info(device: torch.device) -> dict[str, object]:
    """The machine a benchmark ran on, with whether bf16 is fast here as measured (not as the flags claim)."""
    return {**environment.machine_info(device), "bf16_fast": bf16_is_fast(device)}


def iterate_loader(batches: Iterator[Batch], steps: int) -> tuple[float, int]:
    """Seconds to pull ``steps`` batches and the number of images they held."""
    images = 0
    started = time.perf_counter()
    for _ in range(steps):
        batch = next(batches)
        images += sum(v.shape[0] for k, v in batch.items() if k in IMAGE_KEYS)
    return time.perf_counter() - started, images


def cached_pools(image_size: int, folder: str, n: int = 256, seed: int = 0) -> dict[str, list]:
    """Synthetic streams served from memory-mapped ``.npy`` arrays, as the dataset cache serves them."""
    from multimix.data.records import Record

    images, masks, labels = generate_arrays(n, image_size=image_size, seed=seed)
    np.save(os.path.join(folder, "images.npy"), images.astype(np.float16))
    np.save(os.path.join(folder, "masks.npy"), masks)
    images = np.load(os.path.join(folder, "images.npy"), mmap_mode="r")
    masks = np.load(os.path.join(folder, "masks.npy"), mmap_mode="r")
    records = [
        Record(uid=f"bench-{i}", source="bench", label=int(labels[i]), image=images[i], mask=masks[i]) for i in range(n)
    ]
    half = n // 2
    return {SEG_X: records[:half], SEG_U: records[half:], CLS_X: records[:half], CLS_U: records[half:]}


def run_loader_benchmark(
    size: int, settings: BenchmarkSettings, *, workers: int = 2, steps: int = 60
) -> dict[str, float]:
    """Images per second the step loader delivers from cached data with ``workers`` processes."""
    import tempfile

    from multimix.data.streams import StepBatches, step_loader

    with tempfile.TemporaryDirectory() as folder:
        streams = cached_pools(size, folder, seed=settings.seed)
        dataset = StepBatches(
            streams, image_size=size, batch_size=settings.batch_size, seed=settings.seed, total_steps=steps + 10
        )
        batches = step_loader(dataset, num_workers=workers)
        iterate_loader(batches, 10)  # worker start-up and the first prefetched batches
        seconds, images = iterate_loader(batches, steps)
    return {"workers": workers, "images_per_second": images / seconds, "ms_per_step": 1000 * seconds / steps}


def run_memory_check(settings: BenchmarkSettings, *, size: int = 256, batch_size: int = 10) -> Timing:
    """The paper's configuration (256 px, batch 10 per stream): our default step's peak memory."""
    device = torch.device(settings.device)
    batch = make_batch(size, batch_size, settings.seed)
    step = train_step_call("ours", benchmark_model(settings.seed), paper_method(), batch, device)
    return measure(step, STREAM_COUNT * batch_size, device, warmup=1, repeats=2)
