# videollm — the two commands the README promises, plus helpers.
#   make demo   build tiny models + videos and run extract → convert → train → evaluate → chat
#   make test   lint, then the whole test suite
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_OUT ?= demo_out

.PHONY: install demo test lint format bench clean images push lock

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev,deepspeed]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/videollm demo --out $(DEMO_OUT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Two workers, one test module each at a time (module fixtures such as servers are not started
# twice): most tests wait on subprocesses and servers, so 2 cores finish in ~2/3 of the time.
test: lint
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python benchmarks/extract.py
	$(BIN)/python benchmarks/train.py
	$(BIN)/python benchmarks/serve.py

# Container images (images/*/Dockerfile; build context = the repository root). Their names and
# tag come from one place, videollm/images.py:
#   make images                      build base, pipeline and serve
#   make push REGISTRY=my.registry/team   build with that registry in the names, then push
# TORCH_CUDA_ARCH_LIST (GPU architectures flash-attn/DeepSpeed compile for) and DOCKER
# (e.g. podman) can be overridden the same way.
# Empty: videollm.images.REGISTRY.
REGISTRY ?=
DOCKER ?= docker
TORCH_CUDA_ARCH_LIST ?= 8.0;8.6;8.9;9.0
# Evaluated once, on first use (not for other targets).
IMAGE_REFS = $(eval IMAGE_REFS := $$(shell $(PYTHON) -m videollm.images $(REGISTRY)))$(IMAGE_REFS)
image_ref = $(patsubst $(1)=%,%,$(filter $(1)=%,$(IMAGE_REFS)))
IMAGE_ARGS = --build-arg VERSION=$(lastword $(subst :, ,$(call image_ref,base))) \
	--build-arg REVISION=$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

images:
	@test -n "$(call image_ref,base)" || { echo "python -m videollm.images printed no image names"; exit 1; }
	$(DOCKER) build -f images/base/Dockerfile $(IMAGE_ARGS) \
		--build-arg TORCH_CUDA_ARCH_LIST="$(TORCH_CUDA_ARCH_LIST)" -t $(call image_ref,base) .
	$(DOCKER) build -f images/pipeline/Dockerfile $(IMAGE_ARGS) \
		--build-arg BASE_IMAGE=$(call image_ref,base) -t $(call image_ref,pipeline) .
	$(DOCKER) build -f images/serve/Dockerfile $(IMAGE_ARGS) \
		--build-arg BASE_IMAGE=$(call image_ref,base) -t $(call image_ref,serve) .

push: images
	$(DOCKER) push $(call image_ref,base)
	$(DOCKER) push $(call image_ref,pipeline)
	$(DOCKER) push $(call image_ref,serve)

# requirements.lock: every package the pipeline and serve images install, resolved once for
# Linux x86_64 / Python 3.11 from pyproject.toml; the Dockerfiles install with -c it.
lock: install
	$(BIN)/uv pip compile pyproject.toml --extra deepspeed --extra postgres \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet \
		--custom-compile-command "make lock" -o requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
