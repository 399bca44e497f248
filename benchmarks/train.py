"""Training-step throughput: samples/s, tokens/s and peak memory.

Compares, in one run and on the same model and data, the Video-ChatGPT fork's setting
(micro-batch 1, as its README's command uses) against videollm's batched micro-batches, for each
train mode. Run by hand, not in CI:

    python benchmarks/train.py                                  # tiny random Llama on CPU
    python benchmarks/train.py --llm lmsys/vicuna-7b-v1.5 --device cuda --modes projector lora
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import torch

from videollm.demo.tiny_models import build_tiny_llm
from videollm.model.model_config import CheckpointConfig, ModelConfig
from videollm.model.video_llm import IGNORE_INDEX, VIDEO_TOKEN_INDEX, VideoLLM


def make_batch(
    batch: int, text_len: int, tokens: int, dim: int, vocab: int
) -> dict[str, torch.Tensor]:
    ids = torch.randint(10, vocab, (batch, text_len))
    ids[:, 1] = VIDEO_TOKEN_INDEX
    labels = ids.clone()
    labels[:, : text_len // 2] = IGNORE_INDEX
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "features": torch.randn(batch, tokens, dim),
    }


def measure(
    model: VideoLLM, micro: int, samples: int, args: argparse.Namespace
) -> dict[str, float]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5)
    vocab = model.llm.get_input_embeddings().num_embeddings
    dev = next(model.projector.parameters()).device
    batches = [
        make_batch(micro, args.text_len, args.video_tokens, args.feature_dim, vocab)
        for _ in range(samples // micro)
    ]
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if dev.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )

    def step(b: dict[str, torch.Tensor]) -> None:
        with autocast:
            loss = model(**{k: v.to(dev) for k, v in b.items()}).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(batches[0])  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for b in batches:
        step(b)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    n = len(batches) * micro
    out = {
        "micro_batch": micro,
        "samples_per_s": n / seconds,
        "tokens_per_s": n * (args.text_len - 1 + args.video_tokens) / seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if dev.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llm", help="HF id or path (default: a tiny random Llama)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", nargs="+", default=["projector", "lora", "full"])
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--text-len", type=int, default=64)
    parser.add_argument("--video-tokens", type=int, default=356)
    parser.add_argument("--feature-dim", type=int, default=1024)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    llm = args.llm or str(build_tiny_llm(tempfile.mkdtemp(), hidden_size=256, num_layers=4))
    results = []
    for mode in args.modes:
        cfg = CheckpointConfig(
            model=ModelConfig(llm=llm, train_mode=mode),
            feature_dim=args.feature_dim,
            num_video_tokens=args.video_tokens,
        )
        model = VideoLLM.build(
            cfg, device=args.device, dtype=torch.float32 if mode == "full" else None
        )
        if args.gradient_checkpointing:
            model.activation_checkpointing_enable()
        model.train()
        baseline = measure(model, 1, args.samples, args)
        ours = measure(model, args.micro_batch, args.samples, args)
        results.append(
            {
                "mode": mode,
                "baseline_micro1": baseline,
                "videollm": ours,
                "speedup": ours["samples_per_s"] / baseline["samples_per_s"],
            }
        )
        del model
    report = json.dumps({"llm": llm, "device": args.device, "results": results}, indent=2)
    if args.json:
        Path(args.json).write_text(report + "\n")
    print(report)


if __name__ == "__main__":
    main()
