# videollm — the two commands the README promises, plus helpers.
#   make demo   build tiny models + videos and run extract → convert → train → evaluate → chat
#   make test   lint, then the whole test suite
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo_out

.PHONY: install ffmpeg-libs demo test lint format bench clean images images-cpu image-test push lock

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,deepspeed]"
	touch $@

install: $(BIN)/.installed ffmpeg-libs

# torchcodec, the preferred decoder, loads the system's FFmpeg shared libraries (4 to 8), and
# its ops link libpython, which a statically linked python3 (Debian's) does not load itself.
# Where torchcodec does not load and apt can help (Debian/Ubuntu, as root), this installs
# Debian's ffmpeg, then libpython3.X if the interpreter is static; elsewhere install FFmpeg
# yourself (brew/conda install ffmpeg). Without it decoder=auto decodes with decord and PyAV.
APT_INSTALL = DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends
TORCHCODEC_LOADS = $(BIN)/python -c "import torchcodec.decoders" 2>/dev/null
PY_IS_STATIC = $(BIN)/python -c "exit('libpython' in open('/proc/self/maps').read())"
LIBPYTHON = libpython$(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')
ffmpeg-libs: $(BIN)/.installed
	@if $(TORCHCODEC_LOADS); then exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then \
		echo "note: torchcodec does not load (no FFmpeg shared libraries?); decoder=auto" \
			"uses decord and PyAV (install FFmpeg to use torchcodec)"; exit 0; fi; \
	echo "torchcodec does not load: apt-get install ffmpeg"; \
	$(APT_INSTALL) ffmpeg >/dev/null \
		|| { apt-get update -q >/dev/null && $(APT_INSTALL) ffmpeg >/dev/null; }; \
	if ! $(TORCHCODEC_LOADS) && $(PY_IS_STATIC); then \
		echo "torchcodec's ops link $(LIBPYTHON).so: apt-get install $(LIBPYTHON)"; \
		$(APT_INSTALL) $(LIBPYTHON) >/dev/null || true; fi; \
	$(TORCHCODEC_LOADS) \
		|| echo "note: torchcodec still does not load; decoder=auto uses decord and PyAV"

demo: install
	$(BIN)/videollm demo --out $(DEMO_OUT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers, one test module each at a time (module fixtures such as servers are not started
# twice): most tests wait on subprocesses and servers, so 2 cores finish in ~2/3 of the time.
# One torch thread per process: two workers (and the servers and torchrun ranks they start)
# each taking every core made the kfp.local pipeline tests ~30% slower (186 s → 136 s).
test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/serve.py

# Container images (images/*/Dockerfile; build context = the repository root). Their names and
# tag come from one place, videollm/images.py:
#   make images                      build base, pipeline and serve (CUDA)
#   make push REGISTRY=my.registry/team   build with that registry in the names, then push
#   make images-cpu                  build base-cpu, and pipeline and serve on it (<tag>-cpu)
#   make image-test                  build the CPU images from scratch with buildah, run them
# TORCH_CUDA_ARCH_LIST (GPU architectures flash-attn/DeepSpeed compile for), DOCKER (e.g.
# podman, or buildah with its flags) and BUILD_FLAGS (added to every build, e.g.
# --pull=never) can be overridden the same way. For images-cpu, with buildah or podman,
# TORCH_WHEELS=DIR (a folder holding torch's CPU wheel) is mounted into the base-cpu build in
# place of PyTorch's CPU index, and DEBIAN_IMAGE replaces its Debian base image.
# Empty: videollm.images.REGISTRY.
REGISTRY ?=
DOCKER ?= docker
BUILD_FLAGS ?=
TORCH_CUDA_ARCH_LIST ?= 8.0;8.6;8.9;9.0
TORCH_WHEELS ?=
DEBIAN_IMAGE ?=
# Evaluated once, on first use (not for other targets).
IMAGE_REFS = $(eval IMAGE_REFS := $$(shell $(PYTHON) -m videollm.images $(REGISTRY)))$(IMAGE_REFS)
image_ref = $(patsubst $(1)=%,%,$(filter $(1)=%,$(IMAGE_REFS)))
# REVISION label: the last commit that changed what the image is built from. A base rebuilt
# with an unchanged label keeps its ID, so the layers above it stay cached.
revision = --build-arg REVISION=$(or $(shell git log -1 --format=%h -- $(1) 2>/dev/null),unknown)
IMAGE_ARGS = $(BUILD_FLAGS) --build-arg VERSION=$(lastword $(subst :, ,$(call image_ref,base)))
CPU_BASE_ARGS = $(if $(TORCH_WHEELS),--volume $(abspath $(TORCH_WHEELS)):/wheels:ro \
	--build-arg TORCH_FIND_LINKS=/wheels) $(if $(DEBIAN_IMAGE),--build-arg DEBIAN_IMAGE=$(DEBIAN_IMAGE))

images:
	@test -n "$(call image_ref,base)" || { echo "python -m videollm.images printed no image names"; exit 1; }
	$(DOCKER) build -f images/base/Dockerfile $(IMAGE_ARGS) $(call revision,images/base) \
		--build-arg TORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)" -t $(call image_ref,base) .
	$(DOCKER) build -f images/pipeline/Dockerfile $(IMAGE_ARGS) $(call revision,.) \
		--build-arg BASE_IMAGE=$(call image_ref,base) -t $(call image_ref,pipeline) .
	$(DOCKER) build -f images/serve/Dockerfile $(IMAGE_ARGS) $(call revision,.) \
		--build-arg BASE_IMAGE=$(call image_ref,base) -t $(call image_ref,serve) .

images-cpu:
	@test -n "$(call image_ref,base-cpu)" || { echo "python -m videollm.images printed no image names"; exit 1; }
	$(DOCKER) build -f images/base-cpu/Dockerfile $(IMAGE_ARGS) \
		$(call revision,images/base-cpu requirements.lock) $(CPU_BASE_ARGS) \
		-t $(call image_ref,base-cpu) .
	$(DOCKER) build -f images/pipeline/Dockerfile $(IMAGE_ARGS) $(call revision,.) \
		--build-arg BASE_IMAGE=$(call image_ref,base-cpu) -t $(call image_ref,pipeline-cpu) .
	$(DOCKER) build -f images/serve/Dockerfile $(IMAGE_ARGS) $(call revision,.) \
		--build-arg BASE_IMAGE=$(call image_ref,base-cpu) -t $(call image_ref,serve-cpu) .

push: images
	$(DOCKER) push $(call image_ref,base)
	$(DOCKER) push $(call image_ref,pipeline)
	$(DOCKER) push $(call image_ref,serve)

# Slow (minutes; see README) and needs root, buildah and debootstrap: not part of `make test`.
# Run it before every change to images/, requirements.lock or what the images run.
image-test: install
	VIDEOLLM_IMAGE_TESTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider -o log_cli=true \
		--log-cli-level=INFO tests/images/test_build.py

# requirements.lock: every package the pipeline and serve images install on top of their base's
# torch, resolved once for Linux x86_64 / Python 3.11 from pyproject.toml; the Dockerfiles
# install with -c it. Its torch==<version> is the base's build of that version: +cu128 from
# PyTorch's CUDA 12.8 index in images/base, with the nvidia-*-cu12 libraries that build needs,
# and +cpu in images/base-cpu. PyPI's torch, which the resolution sees, is another CUDA build,
# so its CUDA libraries (TORCH_CUDA_PACKAGES) are left out of the lock.
TORCH_CUDA_PACKAGES = cuda-bindings cuda-pathfinder cuda-toolkit nvidia-cublas nvidia-cuda-cupti \
	nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile \
	nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-nccl-cu13 \
	nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra deepspeed --extra postgres \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet \
		$(addprefix --no-emit-package=,$(TORCH_CUDA_PACKAGES)) \
		--custom-compile-command "make lock" -o requirements.lock
	{ printf '%s\n' \
		'# torch==X below is the build of X in the base image: +cu128 (CUDA 12.8, with the' \
		'# nvidia-*-cu12 libraries it needs) in images/base, +cpu in images/base-cpu. The CUDA' \
		'# libraries of the PyPI build of torch are left out (listed at the end; see make lock).' \
		&& cat requirements.lock; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
