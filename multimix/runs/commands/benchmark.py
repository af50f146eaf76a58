"""Time the original (naive) MultiMix step against ours, inference with saliency, and the data loader.

    multimix benchmark                         # 128 and 256 px, CPU
    multimix benchmark --sizes 128 --out results/bench   # benchmark.md, .csv, .json: tables, machine, commit
    multimix benchmark --device cuda --compile
    multimix benchmark --profile --sizes 128,192    # where a step's time goes (torch.profiler)

Same weights and the same five-stream batch (batch per stream --batch-size) for every variant;
first checks that the naive and our step compute the same loss and segmentation (fp32).
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import torch

from multimix.bench.profile import format_profile, profile_training_step
from multimix.bench.training_step import (
    BenchmarkSettings,
    SpeedOptions,
    check_agreement,
    fast_options,
    machine_info,
    matmul_peak_gflops,
    run_inference_benchmark,
    run_loader_benchmark,
    run_memory_check,
    run_training_benchmark,
)
from multimix.evaluation.tables import markdown_table, write_result_files
from multimix.utils.atomic import atomic_write_text
from multimix.utils.logging import setup_console_logging


def build_parser() -> argparse.ArgumentParser:
    """The command's flags (the command reference of the documentation is generated from it)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="128,256", help="image sizes, comma-separated")
    parser.add_argument("--batch-size", type=int, default=4, help="images per stream per step")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compile", action="store_true", help="add torch.compile to the fast variant")
    parser.add_argument("--no-loader", dest="loader", action="store_false", help="skip the data-loader measurement")
    parser.add_argument("--loader-workers", type=int, default=2)
    parser.add_argument(
        "--no-memory", dest="memory", action="store_false", help="skip the paper-configuration memory run"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only profile the training step (CPU): each part's time and share, fp32 and fast",
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument(
        "--out", help="also write benchmark.md, .csv and .json here (the tables, the command, commit, machine, date)"
    )
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def profile_sizes(settings: BenchmarkSettings, machine: dict, json_path: str | None) -> int:
    """Print (and optionally save) the profile of the training step at every size, fp32 and fast."""
    variants = {"fp32": SpeedOptions(), "fast": fast_options(torch.device("cpu"))}
    if variants["fast"] == variants["fp32"]:
        del variants["fast"]  # this CPU has no faster precision: one table per size
    report: dict = {"machine": machine, "profile": {}}
    for size in settings.sizes:
        for name, options in variants.items():
            rows = profile_training_step(
                size, settings.batch_size, steps=settings.repeats, seed=settings.seed, options=options
            )
            print(f"\n{size} px, {name} ({5 * settings.batch_size} images per step)\n{format_profile(rows)}")
            report["profile"].setdefault(str(size), {})[name] = [dataclasses.asdict(r) for r in rows]
    if json_path:
        atomic_write_text(json_path, json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_console_logging()
    settings = BenchmarkSettings(
        sizes=tuple(int(s) for s in args.sizes.split(",")),
        batch_size=args.batch_size,
        warmup=args.warmup,
        repeats=args.repeats,
        compile=args.compile,
        device=args.device,
    )
    if args.profile and args.device != "cpu":
        print("error: --profile measures the CPU step; leave --device at cpu")
        return 2
    device = torch.device(args.device)
    machine = machine_info(device)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()))
    if args.profile:
        return profile_sizes(settings, machine, args.json)
    agreement = check_agreement()
    print(
        f"agreement (fp32, dropout off): loss naive {agreement.loss_naive:.6f} ours {agreement.loss_ours:.6f}, "
        f"max segmentation logit difference {agreement.max_seg_logit_difference:.2e}, "
        f"max gradient difference {agreement.max_gradient_difference:.2e} -> {'OK' if agreement.ok else 'MISMATCH'}"
    )
    report: dict = {
        "train": {},
        "inference": {},
        "loader": {},
        "machine": machine,
        "agreement": {
            "loss_naive": agreement.loss_naive,
            "loss_ours": agreement.loss_ours,
            "max_seg_logit_difference": agreement.max_seg_logit_difference,
            "max_gradient_difference": agreement.max_gradient_difference,
        },
    }
    peak = matmul_peak_gflops() if device.type == "cpu" else 0.0
    report["machine"]["fp32_matmul_peak_gflops"] = round(peak, 1)
    print(
        f"\ntraining step, {5 * args.batch_size} images (5 streams x {args.batch_size}); "
        f"share = counted GFLOP/s over the fp32 matmul peak ({peak:.0f} GFLOP/s, 1024x1024)"
    )
    print(
        f"{'size':>6} {'variant':>8} {'img/s':>9} {'ms/step':>9} {'GFLOP':>7} {'share':>6} "
        f"{'peak RSS MiB':>13} {'x naive':>8}"
    )
    records: list[dict] = []
    for size in settings.sizes:
        timings = run_training_benchmark(size, settings)
        base = timings["naive"].images_per_second
        for name, t in timings.items():
            records.append(
                {
                    "part": "training step",
                    "size": size,
                    "variant": name,
                    "img_s": round(t.images_per_second, 2),
                    "ms": round(t.ms_per_call, 2),
                    "x_naive": round(t.images_per_second / base, 2),
                    "peak_rss_mib": round(t.peak_rss_mib),
                }
            )
            cuda = f" cuda {t.cuda_peak_mib:.0f} MiB" if t.cuda_peak_mib is not None else ""
            share = t.share_of_peak(peak)
            print(
                f"{size:>6} {name:>8} {t.images_per_second:>9.1f} {t.ms_per_call:>9.1f} {t.gflop_per_call or 0:>7.1f} "
                f"{'-' if share is None else f'{share:.0%}':>6} {t.peak_rss_mib:>13.0f} "
                f"{t.images_per_second / base:>8.2f}{cuda}"
            )
        report["train"][str(size)] = {name: round(t.images_per_second, 2) for name, t in timings.items()}
        report["train"][str(size)]["ms_per_step"] = {name: round(t.ms_per_call, 2) for name, t in timings.items()}
        report["train"][str(size)]["peak_rss_mib"] = {name: round(t.peak_rss_mib) for name, t in timings.items()}
        report["train"][str(size)]["gflop_per_step"] = {
            name: round(t.gflop_per_call or 0, 2) for name, t in timings.items()
        }
        report["train"][str(size)]["share_of_fp32_peak"] = {name: t.share_of_peak(peak) for name, t in timings.items()}
    print("\ninference with saliency")
    print(f"{'size':>6} {'naive ms':>9} {'ours ms':>9} {'fast ms':>9} {'x naive':>8} {'fast b16 img/s':>15}")
    for size in settings.sizes:
        inference = run_inference_benchmark(size, settings)
        naive, ours, fast = (inference[k].ms_per_call for k in ("naive_b1", "ours_b1", "fast_b1"))
        print(
            f"{size:>6} {naive:>9.1f} {ours:>9.1f} {fast:>9.1f} "
            f"{naive / min(ours, fast):>8.2f} {inference['fast_b16'].images_per_second:>15.1f}"
        )
        for name in ("naive_b1", "ours_b1", "fast_b1", "fast_b16"):
            timing = inference[name]
            records.append(
                {
                    "part": "inference with saliency",
                    "size": size,
                    "variant": name,
                    "img_s": round(timing.images_per_second, 2),
                    "ms": round(timing.ms_per_call, 2),
                    "x_naive": round(naive / timing.ms_per_call, 2),
                    "peak_rss_mib": round(timing.peak_rss_mib),
                }
            )
        report["inference"][str(size)] = {
            "naive_ms": round(inference["naive_b1"].ms_per_call, 2),
            "ours_ms": round(inference["ours_b1"].ms_per_call, 2),
            "ours_fast_ms": round(inference["fast_b1"].ms_per_call, 2),
            "ours_batch16_img_s": round(inference["fast_b16"].images_per_second, 2),
        }
    if args.loader:
        size = min(settings.sizes)
        loader = run_loader_benchmark(size, settings, workers=args.loader_workers)
        consumed = report["train"][str(size)]["default"]
        print(
            f"\nloader at {size} px, {args.loader_workers} workers, cached data: "
            f"{loader['images_per_second']:.0f} img/s "
            f"= {loader['images_per_second'] / consumed:.1f}x what the default step consumes ({consumed:.0f} img/s)"
        )
        report["loader"] = {
            **{k: round(v, 2) for k, v in loader.items()},
            "size": size,
            "step_consumes_img_s": consumed,
            "ratio": round(loader["images_per_second"] / consumed, 2),
        }
    if args.memory:
        memory = run_memory_check(settings)
        print(
            f"\npaper configuration (256 px, batch 10 per stream, 5 levels): peak RSS {memory.peak_rss_mib:.0f} MiB, "
            f"{memory.ms_per_call / 1000:.1f} s/step"
        )
        report["memory"] = {
            "paper_config_peak_rss_mib": round(memory.peak_rss_mib),
            "s_per_step": round(memory.ms_per_call / 1000, 2),
        }
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2))
    if args.out:
        write_result_files(args.out, "benchmark", markdown=benchmark_markdown(records, report), records=records)
    return 0 if agreement.ok else 1


def benchmark_markdown(records: list[dict], report: dict) -> str:
    """The speed tables as Markdown (ratios are measured in this one run, on this one machine)."""
    header = ["part", "size", "variant", "img/s", "ms per call", "x naive", "peak RSS MiB"]
    rows = [[str(r[k]) for k in ("part", "size", "variant", "img_s", "ms", "x_naive", "peak_rss_mib")] for r in records]
    parts = [markdown_table(header, rows)]
    if report.get("loader"):
        loader = report["loader"]
        parts.append(
            f"Loader at {loader['size']} px: {loader['images_per_second']:.0f} img/s, "
            f"{loader['ratio']:.1f}x what the default step consumes."
        )
    return "\n\n".join(parts)
