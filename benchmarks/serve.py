"""Serving: the new service against a naive FastAPI endpoint and against today's service.

All three serve the same checkpoint on this machine, one after the other, and answer the same
videos and questions with the same ``max_new_tokens``. At each concurrency the client reports
requests/s, p50/p95 latency, time to first token (the new service streams ``POST /chat`` with
``stream=true``; the other two do not stream, so their TTFT is their whole latency) and the
peak RSS of the server's process tree; then the new service's peak RSS under
``--rss-concurrency`` requests at once. "Today's service" is ``--compare-ref`` checked out into
a temporary ``git worktree`` and served from there. Run by hand:

    python benchmarks/serve.py                              # tiny Llama, hidden 512, 8 layers
    python benchmarks/serve.py --levels 1,4 --requests 8    # a quick check
    python benchmarks/serve.py --checkpoint ckpt/ --videos clips/ --device cuda --json out.json

The default model is random: its LM head gives the end-of-sequence token and every token that
is not whole printable text a zero row, so greedy decoding never picks them and every answer is
``max_new_tokens`` tokens long and streams one ``token`` event per token. The new service reads
``VIDEOLLM_MAX_BATCH_SIZE`` and ``VIDEOLLM_MAX_BATCH_TOKENS`` from the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from serve_client import Ask, load

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SERVICE = "videollm.serve.service:VideoLLMService"
QUESTIONS = (
    "What colour is the video?",
    "Which way does the square move?",
    "Describe the video in detail.",
)
KINDS = ("naive", "today", "new")
#: What the ratio table divides: its name there, and the key of a level's result.
RATIOS = {
    "req_per_s": "req_per_s",
    "p95": "p95_ms",
    "ttft_p50": "ttft_p50_ms",
    "rss": "peak_rss_mb",
}
logger = logging.getLogger("bench-serve")


def silence_tokens(llm_dir: Path) -> int:
    """Zero the LM-head rows of the special tokens and of those that alone decode to no text.

    A zero row scores 0 while the best of the others scores above 0, so greedy decoding never
    picks one: answers run to ``max_new_tokens`` and each token adds visible text.
    """
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llm_dir)
    special = set(tokenizer.all_special_ids)
    silent = [
        i
        for i in range(len(tokenizer))
        if i in special or "\ufffd" in (text := tokenizer.decode([i])) or not text.strip()
    ]
    path = llm_dir / "model.safetensors"
    weights = load_file(path)
    weights["lm_head.weight"][silent] = 0.0
    save_file(weights, path, metadata={"format": "pt"})
    return len(silent)


def bench_checkpoint(root: Path, hidden: int, layers: int) -> tuple[Path, list[Path]]:
    """A tiny random Llama behind a projector trained for one epoch, and its videos."""
    from videollm.data.convert import ConvertConfig, convert
    from videollm.demo.run import write_colour_annotations
    from videollm.demo.tiny_models import build_tiny_clip, build_tiny_llm
    from videollm.demo.videos import make_synthetic_videos
    from videollm.features.extract import ExtractConfig, extract
    from videollm.train.loop import load_train_config, train

    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    clip = build_tiny_clip(root / "clip")
    llm = build_tiny_llm(root / "llm", hidden_size=hidden, num_layers=layers)
    logger.info(
        "LLM: hidden %d, %d layers; %d tokens silenced", hidden, layers, silence_tokens(llm)
    )
    videos = make_synthetic_videos(root / "videos", n_per_class=2, containers=("mp4",))
    notes = write_colour_annotations(videos, root / "videos", root / "annotations.jsonl")
    extract(root / "videos", root / "features", ExtractConfig(encoder=str(clip), num_frames=8))
    convert(ConvertConfig(format="jsonl", input=str(notes), out=str(root / "records")))
    flags = {"records": str(root / "records"), "features": str(root / "features"),
             "out": str(root / "ckpt"), "model": {"llm": str(llm)}}  # fmt: skip
    # The projector only, so the LLM (and its silenced rows) stays as built.
    overrides = ["model.train_mode=projector", "train.epochs=1"]
    with contextlib.redirect_stdout(sys.stderr):  # the trainer prints; stdout has the results
        train(load_train_config("demo", overrides, flags=flags))
    return root / "ckpt", [v.path for v in videos]


@contextlib.contextmanager
def worktree(ref: str, root: Path) -> Iterator[Path]:
    """``ref`` checked out (detached) into a temporary folder, removed afterwards."""
    path = root / "today"
    git = ["git", "-C", str(REPO), "worktree"]
    added = subprocess.run(
        [*git, "add", "--detach", str(path), ref], capture_output=True, text=True
    )
    if added.returncode:
        raise RuntimeError(f"--compare-ref {ref}: git worktree add failed: {added.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind: str, env: dict[str, str], log: Path, source: Path) -> tuple[subprocess.Popen, str]:
    """Start one server in its own process group; wait until it answers."""
    port = free_port()
    bin_dir = Path(sys.executable).parent
    if kind == "naive":
        cmd = [str(bin_dir / "uvicorn"), "serve_baseline:app", "--app-dir", str(HERE)]
        ready = "/docs"
    else:
        cmd = [str(bin_dir / "bentoml"), "serve", SERVICE]
        ready = "/readyz"
        if kind == "today":  # its videollm, not the installed (editable) one
            paths = [str(source), env.get("PYTHONPATH", "")]
            env = {**env, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=source, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + ready, timeout=2).status_code == 200:
                return proc, url
        time.sleep(0.5)
    stop(proc)
    raise RuntimeError(f"the {kind} server did not start:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def asks_for(videos: list[Path], n: int, max_new_tokens: int) -> list[Ask]:
    """``n`` requests cycling through the videos and the questions: the same for every server."""
    data = [v.read_bytes() for v in videos]
    return [
        Ask(data[i % len(data)], QUESTIONS[i % len(QUESTIONS)], max_new_tokens) for i in range(n)
    ]


def bench(kind: str, args: argparse.Namespace, env: dict, source: Path, root: Path) -> dict:
    """Every level (and for the new service the RSS level) against one fresh server."""
    proc, url = start(kind, env, root / f"{kind}.log", source)
    stream = kind == "new"
    try:
        # Warm-up: every (video, question) pair the levels send, once.
        pairs = min(math.lcm(len(args.videos), len(QUESTIONS)), 12)
        load(url, asks_for(args.videos, pairs, args.max_new_tokens), 1, stream, proc.pid)
        out: dict = {"levels": []}
        for c in args.levels:
            logger.info("%s: concurrency %d", kind, c)
            asks = asks_for(args.videos, max(args.requests, 2 * c), args.max_new_tokens)
            out["levels"].append(load(url, asks, c, stream, proc.pid))
        if kind == "new" and args.rss_concurrency:
            c = args.rss_concurrency
            logger.info("%s: %d requests at once, for peak RSS", kind, c)
            out["rss"] = load(
                url, asks_for(args.videos, c, args.max_new_tokens), c, stream, proc.pid
            )
        return out
    finally:
        stop(proc)


def fmt(value: float | None, digits: int = 0) -> str:
    return "—" if value is None or value != value else f"{value:.{digits}f}"


def report(results: dict[str, dict], rss_concurrency: int) -> list[str]:
    """The Markdown tables: each server per level, then the new service's ratios."""
    lines = [
        "| server | conc. | req/s | p50 ms | p95 ms | TTFT p50 ms | TTFT p95 ms | tokens/req "
        "| chars/req | peak RSS MB | errors |",
        "|" + "---|" * 11,
    ]
    for kind, res in results.items():
        for r in res["levels"]:
            lines.append(
                f"| {kind} | {r['concurrency']} | {fmt(r['req_per_s'], 2)} | {fmt(r['p50_ms'])} "
                f"| {fmt(r['p95_ms'])} | {fmt(r['ttft_p50_ms'])} | {fmt(r['ttft_p95_ms'])} "
                f"| {fmt(r['tokens_per_req'], 1)} | {fmt(r['chars_per_req'], 1)} "
                f"| {fmt(r['peak_rss_mb'])} | {r['errors']} |"
            )
    others = [k for k in results if k != "new"]
    if "new" in results and others:
        heads = [f"{m} vs {k}" for m in ("req/s", "p95", "TTFT p50", "RSS") for k in others]
        lines += ["", "| conc. | " + " | ".join(heads) + " |", "|" + "---|" * (len(heads) + 1)]
        for r in ratios(results):
            cells = [fmt(r[f"{m}_vs_{k}"], 2) for m in RATIOS for k in others]
            lines.append(f"| {r['concurrency']} | " + " | ".join(cells) + " |")
        lines.append("(new ÷ other: above 1 is better for req/s, below 1 for the rest)")
    if others:
        lines.append(f"{' and '.join(others)}: no streaming, so TTFT is the whole latency.")
    if "rss" in results.get("new", {}):
        rss = results["new"]["rss"]
        lines.append(
            f"new service, {rss_concurrency} requests at once: peak RSS "
            f"{fmt(rss['peak_rss_mb'])} MB, {rss['errors']} errors, p95 {fmt(rss['p95_ms'])} ms"
        )
    return lines


def ratios(results: dict[str, dict]) -> list[dict]:
    """Per level, the new service's numbers divided by each other server's."""
    out = []
    for i, ours in enumerate(results["new"]["levels"]):
        row: dict = {"concurrency": ours["concurrency"]}
        for kind in (k for k in results if k != "new"):
            theirs = results[kind]["levels"][i]
            for name, key in RATIOS.items():
                row[f"{name}_vs_{kind}"] = ours[key] / theirs[key] if theirs[key] else None
        out.append(row)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--checkpoint", help="serve this checkpoint (needs --videos); default: build a tiny one")
    add("--videos", help="folder of .mp4 files to send; default: the tiny model's own videos")
    add("--hidden", type=int, default=512, help="hidden size of the built tiny Llama (512)")
    add("--layers", type=int, default=8, help="layers of the built tiny Llama (8)")
    add("--device", default="cpu", help="VIDEOLLM_DEVICE for every server (cpu)")
    add("--levels", default="1,4,16,64", help="comma-separated concurrencies (1,4,16,64)")
    add(
        "--requests",
        type=int,
        default=32,
        help="requests per level, at least 2× its concurrency (32)",
    )
    add("--max-new-tokens", type=int, default=64, help="tokens per answer, every server (64)")
    add("--rss-concurrency", type=int, default=100, help="new service's RSS level; 0: skip (100)")
    add("--compare-ref", default="98accdb", help="git ref of today's service (98accdb)")
    add("--servers", default=",".join(KINDS), help=f"which to run, of {','.join(KINDS)} (all)")
    add("--json", help="also write settings, results and ratios here")
    args = parser.parse_args(argv)
    args.levels = [int(c) for c in args.levels.split(",")]
    unknown = set(args.servers.split(",")) - set(KINDS)
    if unknown:
        parser.error(f"--servers: unknown {', '.join(sorted(unknown))}; choose from {KINDS}")
    args.servers = [k for k in KINDS if k in args.servers.split(",")]
    if bool(args.checkpoint) != bool(args.videos):
        parser.error("--checkpoint and --videos go together")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    root = Path(tempfile.mkdtemp(prefix="videollm-bench-serve-"))
    if args.checkpoint:
        checkpoint, args.videos = Path(args.checkpoint), sorted(Path(args.videos).glob("*.mp4"))
    else:
        checkpoint, args.videos = bench_checkpoint(root / "model", args.hidden, args.layers)
    env = {**os.environ, "VIDEOLLM_CHECKPOINT": str(checkpoint.resolve()),
           "VIDEOLLM_DEVICE": args.device, "VIDEOLLM_MAX_NEW_TOKENS": str(args.max_new_tokens),
           "BENTOML_HOME": str(root / "bentoml")}  # fmt: skip
    env.pop("VIDEOLLM_API_TOKEN", None)
    results: dict[str, dict] = {}
    for kind in args.servers:
        checkout = (
            worktree(args.compare_ref, root) if kind == "today" else contextlib.nullcontext(REPO)
        )
        with checkout as source:
            results[kind] = bench(kind, args, env, source, root)
    settings = {k: v for k, v in vars(args).items() if k != "videos"}
    settings.update(checkpoint=str(checkpoint), videos=[str(v) for v in args.videos])
    sys.stdout.write("\n".join(report(results, args.rss_concurrency)) + "\n")
    logger.info("model, videos and server logs: %s", root)
    if args.json:
        extra = {"ratios": ratios(results)} if "new" in results and len(results) > 1 else {}
        payload = {"settings": settings, "results": results, **extra}
        Path(args.json).write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
