"""Default CPU, memory and GPU of every pipeline pod, sized for the ``videochatgpt_7b`` recipe.

Each value is the default of a pipeline parameter; a task's request and limit are the same
value (memory over the request is never borrowed, so a pod is not OOM-killed for using what it
asked for). Where the numbers come from:

* **Extract** (1 GPU): CLIP ViT-L/14 is 0.3B parameters, 0.6 GB in bf16; a batch of 4 videos ×
  100 frames with every hidden state kept is ~6 GB more, so any 16 GB GPU fits. Decoding 100
  full-resolution frames per video in 2 worker processes is the CPU and RAM cost: 8 CPUs,
  32 GiB (one 1080p video's 100 RGB frames alone are 0.6 GB before resizing).
* **Train** (per node, 8 GPUs): every rank loads the frozen 7B LLM in bf16 (13.5 GB) into host
  RAM before moving it to its GPU, so 8 ranks peak at ~110 GB, plus the 16 GiB ``/dev/shm``
  (memory-backed, counted against the limit) and ~3 GB of CUDA/Python per rank: 192 GiB.
  32 CPUs give each rank 4 (tokenising, data loading, NCCL). GPU memory: 13.5 GB of weights,
  ~10 GB of activations (micro batch 4 × 2048 tokens, gradient checkpointing, fp32 logits
  over a 32k vocabulary); the trained projector's Adam states are 50 MB, so ZeRO-2 changes
  nothing here: ~25 GB per GPU, a 40 GB card fits.
* **Evaluate** (1 GPU, bf16): 13.5 GB of weights plus ~2.5 GB of KV cache (8 answers ×
  ~550 tokens × 0.5 MB per token); the LLM passes through host RAM once: 8 CPUs, 48 GiB.
* **Small tasks** (``plan_shards``, ``convert``, ``select``, ``package`` and the train task,
  which only watches its PyTorchJob): 1 CPU, 4 GiB; none loads a model.
"""

from __future__ import annotations

#: Small tasks: plan_shards, convert, select, package and the train task (a watcher).
TASK_CPU = "1"
TASK_MEMORY = "4Gi"
#: Each extract task (one GPU, see videollm.cluster.EXTRACT_GPUS).
EXTRACT_CPU = "8"
EXTRACT_MEMORY = "32Gi"
#: The evaluate task; 0 GPUs evaluates on the CPU in fp32. A string: KFP resolves a GPU
#: count from a pipeline parameter only when the parameter is a string.
EVAL_GPUS = "1"
EVAL_CPU = "8"
EVAL_MEMORY = "48Gi"
#: Each training pod (PyTorchJob master and workers), with ``gpus_per_worker`` GPUs (8).
TRAIN_CPU = "32"
TRAIN_MEMORY = "192Gi"
#: How long a PyTorchJob may run (runPolicy.activeDeadlineSeconds), and how long a finished
#: one is kept for its logs (ttlSecondsAfterFinished) before the operator deletes it.
TRAIN_TIMEOUT_HOURS = 72.0
TRAIN_TTL_HOURS = 24.0
