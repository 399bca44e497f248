"""Feature-extraction throughput: Video-ChatGPT's loop versus ``videollm.features.extract``.

Run by hand, not in CI::

    python benchmarks/extract.py                     # ViT-L/14-sized random CLIP, 2 × 16 frames
    python benchmarks/extract.py --dtype bfloat16    # needs native bf16 (AVX512-BF16, AMX) to pay
    python benchmarks/extract.py --decoder decord    # ours with decord instead of torchcodec
    python benchmarks/extract.py --encoder-size tiny --num-videos 16 --num-frames 100
    python benchmarks/extract.py --encoder openai/clip-vit-large-patch14 --videos /data/videos

The default encoder is a randomly initialised CLIP tower of ViT-L/14's size (hidden 1024, 24
layers, 224 px, patch 14), built from a config, no weights needed: at that size the encoder is
the wall, as with the real model. Beside the two loops the same run measures the encoder's own
forward-only ceiling (``ceiling``: random pixels through the same tower, in the passes
extraction makes), so "how far from the hardware" is a number, and prints the CPU capability.

Both variants see the same videos and the same encoder weights, and each runs in its own
subprocess so its peak RSS is its own. The baseline re-implements Video-ChatGPT's
``save_spatio_temporal_clip_features.py``: one video at a time, decord ``get_batch`` of the
sampled frames, ``F.interpolate`` squash to the crop size (no aspect ratio), normalize, one
forward pass per video with all hidden states, spatio-temporal pooling, save. (It saved a
pickle; here it saves safetensors, which costs the same and runs no pickle.)
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from child import report, run_child

MB = 1024.0  # ru_maxrss is in KiB on Linux
VARIANTS = ("baseline", "ours", "ours_no_malloc", "ceiling")


def _seq_frames(total: int, desired: int) -> list[int]:
    """Video-ChatGPT's ``get_seq_frames`` (its own segment-midpoint rule)."""
    seg = float(total - 1) / desired
    return [(int(np.round(seg * i)) + int(np.round(seg * (i + 1)))) // 2 for i in range(desired)]


def run_baseline(videos: list[Path], encoder: str, num_frames: int, out: Path) -> dict[str, Any]:
    """Video-ChatGPT's extraction loop (decode, then encode, one video at a time)."""
    from decord import VideoReader, cpu
    from safetensors.torch import save_file
    from transformers import CLIPVisionModel

    proc = json.loads((Path(encoder) / "preprocessor_config.json").read_text())
    crop = proc["crop_size"]["height"]
    mean = torch.tensor(proc["image_mean"]).view(1, 3, 1, 1)
    std = torch.tensor(proc["image_std"]).view(1, 3, 1, 1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    tower = CLIPVisionModel.from_pretrained(encoder, dtype=dtype).to(device).eval()
    frames_total = 0
    for path in videos:
        vr = VideoReader(str(path), ctx=cpu(0))
        total = len(vr)
        n = min(total, num_frames)
        array = vr.get_batch(_seq_frames(total, n)).asnumpy()
        x = torch.from_numpy(array).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(crop, crop)).to(torch.uint8)  # squash, nearest (theirs)
        x = ((x.float() / 255.0 - mean) / std).to(device, dtype)
        with torch.no_grad():
            hidden = tower(pixel_values=x, output_hidden_states=True).hidden_states[-2][:, 1:]
        feats = hidden.float().cpu().numpy()
        temporal = np.pad(feats.mean(axis=1), ((0, num_frames - n), (0, 0)))
        pooled = np.concatenate([temporal, feats.mean(axis=0)])
        save_file({"features": torch.from_numpy(pooled).half()}, str(out / f"{path.stem}.st"))
        frames_total += n
    return {"videos": len(videos), "frames": frames_total}


def run_ours(videos: Path, encoder: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """``videollm.features.extract`` with the given worker/batch settings."""
    from videollm.features.extract import ExtractConfig, extract

    cfg = ExtractConfig(
        encoder=encoder,
        num_frames=args.num_frames,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        dtype=args.dtype,
        decoder=args.decoder,
    )
    result = extract(videos, out, cfg)
    if result.failed:
        raise RuntimeError(f"{result.failed} videos failed: {result.failures}")
    return {"videos": result.done, "frames": result.frames}


def run_ceiling(frames: int, encoder: str, args: argparse.Namespace) -> dict[str, Any]:
    """The encoder alone: ``frames`` random pixel frames through the tower, as extraction
    passes them (``batch_size`` videos of ``num_frames`` per call, split by the encoder)."""
    from videollm.features.encoder import VideoEncoder, tune_cpu_allocator

    tune_cpu_allocator()  # as extract() does: the ceiling gets the same allocator settings
    tower = VideoEncoder(encoder, device="auto", dtype=args.dtype)
    size = tower.crop or (224, 224)
    per_call = args.batch_size * args.num_frames
    pixels = torch.randn(min(per_call, frames), 3, *size)
    tower.encode_pixels(pixels[:1])  # first-call set-up is not throughput
    start, done = time.perf_counter(), 0
    while done < frames:
        n = min(per_call, frames - done)
        tower.encode_pixels(pixels[:n])
        done += n
    return {"videos": 0, "frames": frames, "encoder_seconds": time.perf_counter() - start}


def _child(args: argparse.Namespace) -> None:
    """Run one variant and print its numbers as one JSON line."""
    if args.threads:
        torch.set_num_threads(args.threads)
    # Import everything heavy before the clock starts: imports are not throughput.
    import decord  # noqa: F401
    import transformers  # noqa: F401

    import videollm.features.extract  # noqa: F401
    from videollm.video.decode import auto_decoders
    from videollm.video.paths import list_videos

    auto_decoders()  # loads torchcodec and its FFmpeg (~1.3 s), as decord is imported above

    if args.child == "ours_no_malloc":
        import videollm.features.extract as extract_module

        extract_module.tune_cpu_allocator = lambda: None  # ablation: glibc defaults
    out = Path(tempfile.mkdtemp(prefix=f"bench_{args.child}_"))
    cpu_start = _cpu_seconds(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if args.child == "baseline":
        paths = [p for _, p in list_videos(args.videos)]
        stats = run_baseline(paths, args.encoder, args.num_frames, out)
    elif args.child == "ceiling":
        stats = run_ceiling(args.ceiling_frames, args.encoder, args)
    else:
        stats = run_ours(Path(args.videos), args.encoder, args, out)
    seconds = stats.pop("encoder_seconds", None) or time.perf_counter() - start
    cpu = _cpu_seconds(resource.RUSAGE_SELF) - cpu_start + _cpu_seconds(resource.RUSAGE_CHILDREN)
    stats.update(
        variant=args.child,
        seconds=round(seconds, 3),
        cpu_seconds=round(cpu, 2),
        videos_per_s=round(stats["videos"] / seconds, 3),
        dtype=args.dtype if args.child != "baseline" else "float32 (theirs on CPU)",
        frames_per_s=round(stats["frames"] / seconds, 3),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / MB, 1),
        peak_rss_workers_mb=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / MB, 1),
    )
    report(stats)


def _cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


#: Random CLIP towers by ``--encoder-size``: (hidden, layers, heads, MLP width).
TOWERS = {"small": (256, 4, 4, 1024), "vit-l": (1024, 24, 16, 4096)}


def build_encoder(size: str, out: Path) -> Path:
    """A random CLIP vision tower: ``tiny`` (32 px, 16 patches), ``small`` (224 px, 4 layers)
    or ``vit-l`` (ViT-L/14's size: hidden 1024, 24 layers, 224 px, patch 14)."""
    from videollm.demo.tiny_models import build_tiny_clip

    build_tiny_clip(out)
    if size == "tiny":
        return out
    from transformers import CLIPVisionConfig, CLIPVisionModel

    hidden, layers, heads, mlp = TOWERS[size]
    torch.manual_seed(0)
    config = CLIPVisionConfig(
        hidden_size=hidden,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        image_size=224,
        patch_size=14,
        projection_dim=hidden,
    )
    CLIPVisionModel(config).save_pretrained(out)
    proc = json.loads((out / "preprocessor_config.json").read_text())
    proc.update(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    (out / "preprocessor_config.json").write_text(json.dumps(proc, indent=2))
    return out


def make_videos(args: argparse.Namespace, out: Path) -> Path:
    from videollm.demo.videos import make_synthetic_videos

    width, height = (int(v) for v in args.size.split("x"))
    per_class = max(1, -(-args.num_videos // 3))
    videos = make_synthetic_videos(
        out,
        n_per_class=per_class,
        containers=tuple(args.containers.split(",")),
        num_frames=args.video_frames,
        size=(width, height),
    )
    for video in videos[args.num_videos :]:
        video.path.unlink()
    return out


def _spawn(variant: str, args: argparse.Namespace, videos: Path, encoder: str) -> dict[str, Any]:
    argv = ["--child", variant, "--videos", str(videos)]
    argv += ["--encoder", encoder, "--num-frames", str(args.num_frames)]
    argv += ["--batch-size", str(args.batch_size), "--num-workers", str(args.num_workers)]
    argv += ["--threads", str(args.threads), "--dtype", args.dtype, "--decoder", args.decoder]
    argv += ["--ceiling-frames", str(args.ceiling_frames)]
    return run_child(__file__, variant, argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", help="folder of videos (default: make synthetic ones)")
    parser.add_argument("--num-videos", type=int, default=2)
    parser.add_argument("--video-frames", type=int, default=64, help="frames per synthetic video")
    parser.add_argument("--size", default="320x240", help="synthetic video WxH")
    parser.add_argument("--containers", default="mp4,avi", help="synthetic video containers")
    parser.add_argument("--encoder", help="HF id or path (default: a random CLIP, see size)")
    parser.add_argument("--encoder-size", choices=["tiny", *TOWERS], default="vit-l")
    parser.add_argument("--num-frames", type=int, default=16, help="frames sampled per video")
    parser.add_argument(
        "--dtype", default="auto", help="ours and the ceiling: auto, float32, bfloat16"
    )
    parser.add_argument("--decoder", default="auto", help="ours: auto, torchcodec, decord, pyav")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per variant (best kept)")
    parser.add_argument("--ablate", action="store_true", help="also run ours without mallopt")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-frames", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(args.videos) if args.videos else make_videos(args, Path(tmp) / "videos")
        encoder = args.encoder or str(build_encoder(args.encoder_size, Path(tmp) / "encoder"))
        variants = ["baseline", "ours", "ceiling"] + (["ours_no_malloc"] if args.ablate else [])
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        # Interleave the variants (in turn-about order) so load from other processes on a
        # shared machine hits them alike; keep the best run of each.
        for rep in range(args.repeats):
            for variant in variants if rep % 2 == 0 else variants[::-1]:
                if variant == "ceiling":  # as many frames as the loops encoded
                    args.ceiling_frames = max(r["frames"] for r in runs["ours"] or runs["baseline"])
                runs[variant].append(_spawn(variant, args, videos, encoder))
        # Best by frames/s: the ceiling encodes frames of no video (its videos/s is 0).
        results = {v: max(r, key=lambda x: x["frames_per_s"]) for v, r in runs.items()}
    from videollm.features.encoder import cpu_has_native_bf16

    base = results["baseline"]
    capability = torch.backends.cpu.get_cpu_capability()
    print(f"CPU capability {capability}; native bf16 (AVX512-BF16/AMX): {cpu_has_native_bf16()}")
    report: dict[str, Any] = {
        "cpu_capability": capability,
        "native_bf16": cpu_has_native_bf16(),
        "setup": {
            k: v for k, v in vars(args).items() if k not in ("child", "json") and v is not None
        },
        "torch_threads": torch.get_num_threads(),
        **results,
        "all_runs_s": {v: [r["seconds"] for r in rs] for v, rs in runs.items()},
    }
    for name, r in results.items():
        print(
            f"{name:>14}: {r['videos_per_s']:7.3f} videos/s  {r['frames_per_s']:8.3f} frames/s  "
            f"{r['seconds']:7.2f} s  CPU {r['cpu_seconds']:7.1f} s  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB (workers {r['peak_rss_workers_mb']:.0f} MB)"
        )
        if name not in ("baseline", "ceiling"):
            speed = round(r["videos_per_s"] / base["videos_per_s"], 2)
            cpu = round(base["cpu_seconds"] / r["cpu_seconds"], 2)
            report[f"speedup_{name}"] = {"wall": speed, "cpu_time": cpu}
            print(f"{'':>16}speedup vs baseline: {speed}× wall, {cpu}× CPU time")
    ceiling = results["ceiling"]["frames_per_s"]
    report["ours_of_ceiling"] = round(results["ours"]["frames_per_s"] / ceiling, 3)
    report["ceiling_vs_baseline"] = round(ceiling / base["frames_per_s"], 2)
    print(
        f"ours is {report['ours_of_ceiling']:.0%} of the encoder's forward-only ceiling "
        f"({ceiling} frames/s, {report['ceiling_vs_baseline']}× the baseline's frames/s)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
