"""Vision encoder: frames in, patch tokens of one hidden layer out.

The tower is loaded by its encoder family (:mod:`videollm.features.encoder_family`), which also
says how many leading non-patch tokens (CLIP's CLS, none for SigLIP) each hidden state has.

Preprocessing follows the checkpoint's ``preprocessor_config.json`` (shortest-edge bicubic
resize, center crop, rescale, normalize) but runs in torch on the whole frame batch, on the
encoder's device, instead of per image in PIL. The fast Hugging Face image processor is not used
because it needs torchvision.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import sys
from typing import Any

import torch
import torch.nn.functional as F
from transformers.image_processing_utils import ImageProcessingMixin

from videollm.errors import ConfigError
from videollm.features.encoder_family import WHAT, load_tower
from videollm.hub import load_pretrained, model_source

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_DTYPES.update({"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16})


def resolve_device(device: str) -> torch.device:
    """``auto`` → ``cuda`` when available, else ``cpu``; anything else as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


#: CPU flags of native bf16 matrix instructions (Linux ``/proc/cpuinfo`` names).
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@functools.cache
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU computes bf16 matrix products natively (AVX512-BF16 or AMX).

    ``torch.backends.cpu.get_cpu_capability()`` names only the vector ISA torch dispatches to
    (``AVX2``, ``AVX512``), not these, so the CPU's flags decide; where they cannot be read
    (not Linux) the answer is no, and fp32 stays the default.
    """
    try:
        with open(cpuinfo, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("flags"):
                    return bool(NATIVE_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return False


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` → bf16 (or fp16 on GPUs without bf16) on CUDA; on a CPU, bf16 where it has
    native bf16 matrix units (2.4× fp32 on a ViT-L/14 tower), else fp32 (emulated bf16 is
    many times slower than fp32 there)."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if dtype not in _DTYPES:
        raise ConfigError(f"dtype: unknown {dtype!r}; choose from auto, {', '.join(_DTYPES)}")
    return _DTYPES[dtype]


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` → ``bfloat16`` (as feature metadata records it)."""
    return str(dtype).removeprefix("torch.")


@functools.cache
def tune_cpu_allocator() -> None:
    """Keep freed memory in the process heap instead of handing it back to the OS (glibc).

    Every encoder layer allocates activations of tens of MB. glibc serves blocks that big
    with ``mmap`` and unmaps them on free, so each layer page-faults its output in afresh;
    on a 2-core VM that was ~30% of CPU encoding time. Raising the mmap and trim thresholds
    has the effect of the jemalloc/tcmalloc advice in PyTorch's CPU performance guide.
    Process-wide, and the heap then stays at its peak size, so only batch extraction calls it;
    long-lived processes (chat, serving) keep the default allocator.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
        libc.mallopt(m_mmap_threshold, 1 << 30)
        libc.mallopt(m_trim_threshold, 1 << 30)
    except (OSError, AttributeError):  # not glibc (musl, ...): leave the allocator alone
        logger.debug("mallopt unavailable; CPU allocator left as is")


def _edge(value: Any, *keys: str) -> int:
    """Read a size from an image-processor config (int or dict, across transformers versions)."""
    if isinstance(value, int):
        return value
    for key in keys:
        if isinstance(value, dict) and key in value:
            return int(value[key])
    raise ValueError(f"cannot read a size from {value!r}")


class VideoEncoder:
    """A vision tower that turns ``N×H×W×3`` uint8 frames into ``N×P×D`` patch tokens.

    Args:
        name_or_path: Hugging Face id, local folder or ``s3://`` model mirror
            (``openai/clip-vit-large-patch14``).
        layer: Index into ``hidden_states`` (``-2``: penultimate, Video-ChatGPT's choice).
        device: ``auto``, ``cpu``, ``cuda``, ...
        dtype: ``auto``, ``float32``, ``float16`` or ``bfloat16``.
        max_frames_per_pass: Most frames per forward pass; ``None``: 64 on CPU (bigger passes
            were ~20% slower per frame there: activations outgrow the caches), no limit on GPU.
    """

    def __init__(
        self,
        name_or_path: str,
        layer: int = -2,
        device: str = "auto",
        dtype: str = "auto",
        max_frames_per_pass: int | None = None,
    ) -> None:
        self.name = name_or_path
        self.layer = layer
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if self.device.type == "cpu" and self.dtype == torch.bfloat16 and not cpu_has_native_bf16():
            logger.warning(
                "dtype=bfloat16 on a CPU without native bf16 (no AVX512-BF16 or AMX): it is "
                "emulated and many times slower than float32; dtype=auto picks float32 here"
            )
        if max_frames_per_pass is None and self.device.type == "cpu":
            max_frames_per_pass = 64
        self.max_frames_per_pass = max_frames_per_pass
        source = model_source(name_or_path, WHAT)  # an s3:// mirror: its local copy
        tower = load_tower(source, name_or_path, self.dtype)
        self.family = tower.family
        self.prefix_tokens = tower.prefix_tokens
        self.hidden_size = tower.hidden_size
        self.num_patches = tower.num_patches
        self.model = tower.model.to(self.device).eval()
        self._hidden_index = self._truncate_to_layer(layer)
        proc, _ = load_pretrained(
            lambda: ImageProcessingMixin.get_image_processor_dict(source), name_or_path, WHAT
        )
        size = proc.get("size", 224)
        # CLIP-style configs resize the shortest edge; SigLIP-style ones to an exact height×width.
        self.resize_exact: tuple[int, int] | None = None
        self.resize_to: int | None = None
        if isinstance(size, dict) and "shortest_edge" not in size:
            self.resize_exact = (_edge(size, "height"), _edge(size, "width"))
        else:
            self.resize_to = _edge(size, "shortest_edge")
        if not proc.get("do_resize", True):
            self.resize_exact = self.resize_to = None
        crop = proc.get("crop_size", size) if proc.get("do_center_crop", False) else None
        self.crop = (_edge(crop, "height"), _edge(crop, "width")) if crop is not None else None
        self.rescale = float(proc.get("rescale_factor", 1 / 255))
        mean = proc.get("image_mean", [0.0, 0.0, 0.0])
        std = proc.get("image_std", [1.0, 1.0, 1.0])
        # Fold rescale and normalize into one multiply-add: (x*r - m)/s = x*(r/s) - m/s.
        self._scale = torch.tensor([self.rescale / s for s in std], device=self.device)
        self._shift = torch.tensor([m / s for m, s in zip(mean, std, strict=True)])
        self._shift = self._shift.to(self.device)
        logger.info(
            "encoder %s (%s) on %s (%s): layer %d, %d patches × %d",
            name_or_path,
            self.family,
            self.device,
            self.dtype,
            layer,
            self.num_patches,
            self.hidden_size,
        )

    def _truncate_to_layer(self, layer: int) -> int | None:
        """Drop transformer blocks after ``layer`` and hook the last one kept.

        Blocks after ``layer`` only produce outputs that are thrown away, and asking the model
        for every hidden state would keep all of them in memory (gigabytes for 400 frames of
        ViT-L). Instead the output of the last kept block is caught by a forward hook.

        Returns:
            None when the hook is in place, else the ``hidden_states`` index to read
            (towers without an ``encoder.layers`` or ``encoder.layer`` list, or ``layer`` =
            the embeddings).
        """
        self._captured: torch.Tensor | None = None
        tower = getattr(self.model, "vision_model", self.model)
        encoder = getattr(tower, "encoder", None)
        # CLIP and SigLIP name the list ``layers``; ViT, DINOv2 and other BERT-style ``layer``.
        blocks = getattr(encoder, "layers", None)
        if blocks is None:
            blocks = getattr(encoder, "layer", None)
        if not isinstance(blocks, torch.nn.ModuleList):
            return layer
        count = len(blocks) + 1  # hidden_states = embeddings + one entry per block
        if not -count <= layer < count:
            raise ConfigError(f"layer: {layer} out of range for {len(blocks)} encoder blocks")
        keep = layer % count
        if keep == 0:
            return 0
        del blocks[keep:]
        blocks[keep - 1].register_forward_hook(self._capture)
        return None

    def _capture(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        self._captured = output[0] if isinstance(output, tuple) else output

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """Resize, crop and normalize ``N×H×W×3`` uint8 frames to ``N×3×S×S`` model input."""
        # NHWC → NCHW view: channels_last in memory, which the fast uint8 resize kernel wants.
        x = frames.to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        size = self._resize_size(x.shape[-2], x.shape[-1])
        if size != (x.shape[-2], x.shape[-1]):
            x = _resize_bicubic(x, size)
        if self.crop is not None:
            ch, cw = self.crop
            top = max(0, (x.shape[-2] - ch) // 2)
            left = max(0, (x.shape[-1] - cw) // 2)
            x = x[..., top : top + ch, left : left + cw]
        # One contiguous float copy, then rescale+normalize in place: fewer big allocations.
        out = torch.empty(x.shape, dtype=torch.float32, device=self.device)
        out.copy_(x).mul_(self._scale.view(1, 3, 1, 1)).sub_(self._shift.view(1, 3, 1, 1))
        return out.to(self.dtype)

    def _resize_size(self, h: int, w: int) -> tuple[int, int]:
        """Output size of the resize step for an ``h×w`` input."""
        if self.resize_exact is not None:
            return self.resize_exact
        if self.resize_to is None:
            return h, w
        short, long = (h, w) if h <= w else (w, h)
        # Same rule as CLIPImageProcessor: shortest edge to size, long side truncated.
        new_short, new_long = self.resize_to, int(self.resize_to * long / short)
        return (new_short, new_long) if h <= w else (new_long, new_short)

    @torch.inference_mode()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch tokens (CLS etc. dropped) of preprocessed ``N×3×S×S`` pixels: ``N×P×D``."""
        pixels = pixels.to(self.device, self.dtype)
        step = self.max_frames_per_pass or len(pixels)
        if len(pixels) <= step:
            return self._forward(pixels)
        return torch.cat([self._forward(chunk) for chunk in pixels.split(step)])

    def _forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if self._hidden_index is None:
            self.model(pixel_values=pixels)
            hidden, self._captured = self._captured, None
        else:
            out = self.model(pixel_values=pixels, output_hidden_states=True)
            hidden = out.hidden_states[self._hidden_index]
        assert hidden is not None
        return hidden[:, self._prefix_of(hidden.shape[1]) :]

    def _prefix_of(self, length: int) -> int:
        """Leading non-patch tokens in a hidden state of ``length`` tokens.

        Raises:
            ConfigError: The length does not fit the family's layout (a checkpoint whose
                preprocessor resizes to another size than the model's ``image_size``).
        """
        prefix = length - self.num_patches
        if prefix < 0 or (self.prefix_tokens is not None and prefix != self.prefix_tokens):
            expected = self.num_patches + (self.prefix_tokens or 0)
            raise ConfigError(
                f"{WHAT}: {self.name} ({self.family}) returned {length} tokens per frame, "
                f"expected {expected} ({self.num_patches} patches); is its preprocessor's "
                "size its image_size?"
            )
        return prefix

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Patch tokens of ``N×H×W×3`` uint8 frames: ``N×P×D`` (CLS dropped)."""
        return self.encode_pixels(self.preprocess(frames))


def _resize_bicubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bicubic resize of ``N×3×H×W`` uint8 pixels, rounded to whole values.

    On CPU the uint8 kernel is used: about 10× faster than float, and like PIL (which
    CLIPImageProcessor uses) it rounds to uint8 between the horizontal and vertical passes.
    CUDA has no uint8 kernel for this, so the GPU resizes in float and rounds at the end.
    """
    if x.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
        return F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
    y = F.interpolate(x.float(), size=size, mode="bicubic", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255)
