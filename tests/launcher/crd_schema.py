"""CRD schemas as strict JSON Schemas, to validate the manifests the launchers build offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

# shared/ sits next to the repository checkout.
CRD_DIR = Path(__file__).parents[2].parent / "shared" / "k8s-crds"


def structural(schema: dict[str, Any]) -> dict[str, Any]:
    """The CRD schema as a strict JSON Schema.

    Two Kubernetes extensions matter here. ``x-kubernetes-int-or-string`` fields accept an
    integer or a string (quantities, ports): controller-gen already emits an ``anyOf`` of both
    next to the extension, and one is added where a schema lacks it. And fields a structural
    schema does not declare are silently *pruned* by the API server, so a misspelt key would
    vanish without an error; here it fails validation instead (``additionalProperties: false``).
    """
    out = dict(schema)
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out and "type" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in out:
        out["properties"] = {k: structural(v) for k, v in out["properties"].items()}
        preserve = out.get("x-kubernetes-preserve-unknown-fields")
        if "additionalProperties" not in out and not preserve:
            out["additionalProperties"] = False
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = structural(out["additionalProperties"])
    if isinstance(out.get("items"), dict):
        out["items"] = structural(out["items"])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [structural(s) for s in out[key]]
    return out


def crd_validator(path: Path, version: str) -> jsonschema.Draft7Validator:
    """A strict validator of the ``version`` schema of the CRD at ``path``."""
    crd = yaml.safe_load(path.read_text())
    served = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    schema = structural(served["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(validator: jsonschema.Draft7Validator, doc: dict[str, Any]) -> list[str]:
    """Every way ``doc`` breaks the schema, as ``path: message`` lines."""
    return sorted(
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(doc)
    )
