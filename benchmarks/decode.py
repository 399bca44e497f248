"""Decoding throughput: torchcodec, decord (Video-ChatGPT's decoder) and PyAV, same frames.

Run by hand, not in CI::

    python benchmarks/decode.py                          # 8 videos, 640x360 H.264, 100 of 300
    python benchmarks/decode.py --size 1280x720 --num-videos 4
    python benchmarks/decode.py --videos /data/videos --num-frames 100
    python benchmarks/decode.py --device cuda --decoders torchcodec   # NVDEC, on a GPU machine

Each decoder reads every video through ``read_video`` (segment-midpoint sampling, as
extraction does) in its own subprocess, so its peak RSS is its own; the runs are interleaved
and the best of ``--repeats`` is kept. decord is the baseline: it is what Video-ChatGPT's
extraction script decodes with. The report checks that every decoder sampled the same frame
indices. Synthetic videos are a textured picture panning sideways (not flat colour, which
compresses to nothing and decodes unrealistically fast), H.264 at 30 fps.
"""

from __future__ import annotations

import argparse
import hashlib
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
DECODERS = ("decord", "torchcodec", "pyav")


def make_videos(out: Path, count: int, frames: int, width: int, height: int) -> Path:
    """``count`` H.264 mp4s of a smooth random texture panning 3 px a frame."""
    from videollm.demo.videos import write_video

    out.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng(i)
        cells = (1, 3, -(-height // 8), -(-(width + 3 * frames) // 8))  # 8×8 px cells, rounded up
        small = torch.from_numpy(rng.random(cells))
        texture = F.interpolate(small.float(), scale_factor=8, mode="bicubic")[0]
        texture = (texture.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()
        clip = np.stack([texture[:height, 3 * t : 3 * t + width] for t in range(frames)])
        write_video(out / f"pan_{i:03d}.mp4", clip, fps=30)
    return out


def _child(args: argparse.Namespace) -> None:
    """Decode every video with one decoder; print its numbers as one JSON line."""
    from videollm.video.decode import read_video
    from videollm.video.paths import list_videos

    paths = [p for _, p in list_videos(args.videos)]
    read_video(paths[0], 1, decoder=args.child, device=args.device)  # load libraries first
    digest, frames = hashlib.sha256(), 0
    cpu_start, start = _cpu_seconds(), time.perf_counter()
    for path in paths:
        video = read_video(
            path, args.num_frames, decode_threads=args.threads, decoder=args.child,
            device=args.device,
        )  # fmt: skip
        frames += len(video.indices)
        digest.update(json.dumps(video.indices).encode())
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {
        "decoder": args.child,
        "videos": len(paths),
        "frames": frames,
        "seconds": round(seconds, 3),
        "frames_per_s": round(frames / seconds, 1),
        "ms_per_video": round(1000 * seconds / len(paths), 1),
        "cpu_seconds": round(_cpu_seconds() - cpu_start, 2),
        "peak_rss_mb": round(_peak_rss_kib() / MB, 1),
        "indices_sha256": digest.hexdigest()[:16],
    }
    report(result)


def _peak_rss_kib() -> int:
    """This process's peak RSS. ``VmHWM``, not ``ru_maxrss``: on Linux the latter carries the
    parent's RSS at ``fork`` over ``exec``, and the parent holds the videos it just made."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _spawn(decoder: str, args: argparse.Namespace, videos: Path) -> dict[str, Any]:
    argv = ["--child", decoder, "--videos", str(videos), "--num-frames", str(args.num_frames)]
    argv += ["--threads", str(args.threads), "--device", args.device]
    return run_child(__file__, decoder, argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", help="folder of videos (default: make synthetic ones)")
    parser.add_argument("--num-videos", type=int, default=8)
    parser.add_argument("--video-frames", type=int, default=300, help="frames per synthetic video")
    parser.add_argument("--size", default="640x360", help="synthetic video WxH")
    parser.add_argument("--num-frames", type=int, default=100, help="frames sampled per video")
    parser.add_argument("--decoders", default=",".join(DECODERS))
    parser.add_argument("--device", default="cpu", help="torchcodec's: cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="decoder threads (0: FFmpeg's)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per decoder (best kept)")
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--child", choices=DECODERS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    decoders = args.decoders.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        if args.videos:
            videos = Path(args.videos)
        else:
            width, height = (int(v) for v in args.size.split("x"))
            made = time.perf_counter()
            videos = make_videos(Path(tmp), args.num_videos, args.video_frames, width, height)
            print(f"made {args.num_videos} videos in {time.perf_counter() - made:.0f} s")
        runs: dict[str, list[dict[str, Any]]] = {d: [] for d in decoders}
        for rep in range(args.repeats):  # interleaved, turn about, so load hits all alike
            for decoder in decoders if rep % 2 == 0 else decoders[::-1]:
                runs[decoder].append(_spawn(decoder, args, videos))
    results = {d: max(r, key=lambda x: x["frames_per_s"]) for d, r in runs.items()}
    same = len({r["indices_sha256"] for r in results.values()}) == 1
    base = results.get("decord")
    summary: dict[str, Any] = {
        "setup": {k: v for k, v in vars(args).items() if k not in ("child", "json")},
        "same_frames": same,
        **results,
    }
    for name, r in results.items():
        ratio = f"  {r['frames_per_s'] / base['frames_per_s']:.2f}× decord" if base else ""
        print(
            f"{name:>10}: {r['frames_per_s']:8.1f} frames/s  {r['ms_per_video']:7.1f} ms/video  "
            f"CPU {r['cpu_seconds']:6.1f} s  peak RSS {r['peak_rss_mb']:.0f} MB{ratio}"
        )
        if base and name != "decord":
            summary[f"{name}_vs_decord"] = round(r["frames_per_s"] / base["frames_per_s"], 2)
    print(f"every decoder sampled the same frames: {same}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
