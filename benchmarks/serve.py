"""Serving latency and throughput: videollm's BentoML service against a naive FastAPI server.

Both serve the same checkpoint (the demo's tiny model unless ``--checkpoint`` is given) on this
machine; the client sends ``POST /chat`` with a video at concurrency 1, 4 and 16 and reports
p50/p95 latency, requests/s and the server's own decode/encode/generate split. Run by hand:

    python benchmarks/serve.py                      # tiny model on CPU
    python benchmarks/serve.py --checkpoint ckpt/ --video clip.mp4 --device cuda --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
QUESTION = "What colour is the video?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, checkpoint: str, device: str, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "VIDEOLLM_CHECKPOINT": checkpoint, "VIDEOLLM_DEVICE": device}
    env.pop("VIDEOLLM_API_TOKEN", None)
    bin_dir = Path(sys.executable).parent
    if kind == "videollm":
        cmd = [str(bin_dir / "bentoml"), "serve", "videollm.serve.service:VideoLLMService"]
        ready = "/readyz"
    else:
        cmd = [str(bin_dir / "uvicorn"), "serve_baseline:app", "--app-dir", str(HERE)]
        ready = "/docs"
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + ready, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"{kind} server did not start:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def one_request(url: str, video: bytes, max_new_tokens: int) -> tuple[float, dict]:
    start = time.perf_counter()
    response = httpx.post(
        url + "/chat",
        data={"question": QUESTION, "max_new_tokens": str(max_new_tokens)},
        files={"video": ("clip.mp4", video, "video/mp4")},
        timeout=600,
    )
    response.raise_for_status()
    return (time.perf_counter() - start) * 1e3, response.json()["timings"]


def load(url: str, video: bytes, concurrency: int, requests: int, max_new_tokens: int) -> dict:
    one_request(url, video, max_new_tokens)  # warm-up
    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda _: one_request(url, video, max_new_tokens), range(requests)))
    wall = time.perf_counter() - start
    latencies = sorted(r[0] for r in results)
    split = {k: statistics.median(r[1][k] for r in results) for k in results[0][1]}
    return {
        "concurrency": concurrency,
        "requests": requests,
        "req_per_s": requests / wall,
        "p50_ms": latencies[len(latencies) // 2],
        "p95_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))],
        **{f"median_{k}": v for k, v in split.items()},
    }


def peak_rss_mb(pid: int) -> float:
    """Peak RSS of a server process and its children (VmHWM), in MB."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if int(fields.get("PPid", "0")) == pid or status.parent.name == str(pid):
            total += int(fields.get("VmHWM", "0 kB").split()[0])
    return total / 1024


def demo_checkpoint(root: Path) -> tuple[str, Path]:
    from videollm.demo.run import run_demo

    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    summary = run_demo(root / "demo")
    return summary["checkpoint"], sorted(Path(summary["videos"]).glob("*.mp4"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="default: train the demo's tiny model first")
    parser.add_argument("--video", help="default: one of the demo's videos")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=48, help="requests per level")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="videollm-bench-serve-"))
    if args.checkpoint:
        checkpoint, video_path = args.checkpoint, Path(args.video)
    else:
        checkpoint, video_path = demo_checkpoint(root)
    video = video_path.read_bytes()
    results: dict[str, list[dict]] = {}
    for kind in ("baseline", "videollm"):
        proc, url = start(kind, checkpoint, args.device, root / f"{kind}.log")
        try:
            results[kind] = [
                load(url, video, c, max(args.requests, 2 * c), args.max_new_tokens)
                for c in args.concurrency
            ]
            results[kind + "_peak_rss_mb"] = peak_rss_mb(proc.pid)  # type: ignore[assignment]
        finally:
            stop(proc)

    header = "| server | conc. | req/s | p50 ms | p95 ms | decode | encode | generate |"
    lines = [header, "|" + "---|" * 8]
    for kind in ("baseline", "videollm"):
        for r in results[kind]:
            lines.append(
                f"| {kind} | {r['concurrency']} | {r['req_per_s']:.2f} | {r['p50_ms']:.0f} | "
                f"{r['p95_ms']:.0f} | {r['median_decode_ms']:.0f} | {r['median_encode_ms']:.0f} "
                f"| {r['median_generate_ms']:.0f} |"
            )
    for ours, base in zip(results["videollm"], results["baseline"], strict=True):
        ratio = ours["req_per_s"] / base["req_per_s"]
        lines.append(f"concurrency {ours['concurrency']}: {ratio:.2f}× the baseline's req/s")
    lines.append(
        f"peak RSS: videollm {results['videollm_peak_rss_mb']:.0f} MB, "
        f"baseline {results['baseline_peak_rss_mb']:.0f} MB"
    )
    sys.stdout.write("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
