"""The naive baseline for ``benchmarks/serve.py``: a plain FastAPI endpoint, one model call
per request, no batching. Started by the benchmark with uvicorn; reads VIDEOLLM_CHECKPOINT and,
like the service, VIDEOLLM_DEVICE.

It does what a hand-written server usually does: save the upload, decode, encode, generate,
with one lock around the model (the encoder is not thread-safe).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

from fastapi import FastAPI, Form, UploadFile

from videollm.config_loader import from_dict
from videollm.eval.generate import GenerationArgs, generate_answers
from videollm.features.encoder import VideoEncoder
from videollm.features.extract import ExtractConfig
from videollm.features.pooling import pool
from videollm.model.video_llm import VideoLLM
from videollm.serve.serve_config import ServeConfig
from videollm.video.decode import read_video

# The service's device setting (so also its dtype: bf16 on a GPU): a comparison across
# devices would say nothing about serving.
model = VideoLLM.from_checkpoint(
    os.environ["VIDEOLLM_CHECKPOINT"], device=ServeConfig.from_env().device
)
extract_cfg = from_dict(ExtractConfig, dict(model.checkpoint_config.extract))
# The encoder goes where the model landed ("auto" picks one), as in the service's engine.
device = str(next(model.projector.parameters()).device)
encoder = VideoEncoder(extract_cfg.encoder, extract_cfg.layer, device)
lock = threading.Lock()
app = FastAPI()


@app.post("/chat")
def chat(video: UploadFile, question: str = Form(...), max_new_tokens: int = Form(16)) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.mp4"
        path.write_bytes(video.file.read())
        start = time.perf_counter()
        sampled = read_video(path, extract_cfg.num_frames, extract_cfg.resize_shortest)
    decoded = time.perf_counter()
    with lock:
        feats = pool(encoder.encode(sampled.frames), extract_cfg)
        encoded = time.perf_counter()
        turns = [{"from": "human", "value": f"<video>\n{question}"}]
        answer = generate_answers(model, [turns], [feats], GenerationArgs(max_new_tokens, 0.0))[0]
    done = time.perf_counter()
    return {
        "answer": answer,
        "timings": {
            "decode_ms": (decoded - start) * 1e3,
            "encode_ms": (encoded - decoded) * 1e3,
            "generate_ms": (done - encoded) * 1e3,
        },
    }
