"""``videollm models mirror``: parsing only; the work is in :mod:`videollm.hub.mirror`."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _cmd_models_mirror(args: argparse.Namespace) -> int:
    from videollm.hub.mirror import mirror_model

    result = mirror_model(args.source, args.dest, args.revision, args.allow_pickle)
    print(json.dumps(vars(result)))
    return 0


MIRROR_HELP = """\
Copy a Hugging Face model to S3/MinIO, so a cluster without internet access loads it from there.

HF_ID_OR_PATH is a Hub id (downloaded with snapshot_download: HF_TOKEN for gated models,
cached under HF_HOME) or a local model folder. S3_URI is s3://BUCKET/models/NAME; then give it
wherever a model id goes: --llm, --encoder, the llm/encoder pipeline parameters (a served
checkpoint names them too). Loading downloads the mirror once into $HF_HOME/videollm-s3/.

Copied: *.safetensors weights, config/tokenizer files (*.json, *.model, *.txt, *.jinja, ...)
and the licence. Pickle weights (*.bin, *.pt, ...) can run code when loaded and are copied only
with --allow-pickle. Files already in S3_URI with the same size and sha256 are skipped, so a
re-run is cheap and an interrupted copy resumes. videollm-mirror.json (source, commit, each
file's sha256) is written last: a prefix without it is an unfinished copy, refused at load.
"""


def add_models_parser(sub: Any) -> None:
    """Add ``videollm models mirror`` to the top-level subparsers ``sub``."""
    p = sub.add_parser("models", help="base models: mirror them to S3 for air-gapped clusters")
    models = p.add_subparsers(dest="models_command", required=True, metavar="SUBCOMMAND")
    p = models.add_parser(
        "mirror",
        help="copy a Hugging Face model (Hub id or folder) to an s3:// prefix",
        description=MIRROR_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="S3 connection: VIDEOLLM_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
        "(or VIDEOLLM_S3_SECRET_DIR).",
    )
    p.add_argument("source", metavar="HF_ID_OR_PATH", help="Hub id (org/name) or model folder")
    p.add_argument("dest", metavar="S3_URI", help="destination prefix, s3://BUCKET/models/NAME")
    p.add_argument("--revision", help="Hub branch, tag or commit (default: main)")
    p.add_argument(
        "--allow-pickle",
        dest="allow_pickle",
        action="store_true",
        help="also copy pickle weights (*.bin, *.pt); needed when a model has no safetensors",
    )
    p.set_defaults(func=_cmd_models_mirror)
