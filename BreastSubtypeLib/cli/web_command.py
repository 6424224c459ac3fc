"""``breast-subtype web``: the BreastSubtype app in the browser (trame-slicer on Slicer's core).

Listens on 127.0.0.1 unless ``--host`` says otherwise. The web packages (trame-slicer, slicer-core)
are imported only here, inside ``run``, so the rest of the CLI never needs them.
"""

from __future__ import annotations

import argparse
import sys

from BreastSubtypeLib.errors import BadInputError

HELP = "serve the BreastSubtype app in a web browser (slice views, 3-D view, one-click tumour, results)"

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0 picks a free one; default 8080)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only; anything else exposes "
        "uploaded images to the network)",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=512, help="largest accepted upload in MB (default 512)"
    )
    parser.add_argument(
        "--model", default="demo", help="registry id or model package folder/zip used by Run (default: demo)"
    )


def exposure_warning(host: str) -> str | None:
    """The warning printed when the server would be reachable from other machines."""
    if host in LOCAL_HOSTS:
        return None
    return (
        f"WARNING: listening on {host}: anyone who can reach this address can upload images, "
        "see results and download reports. There is no login and no TLS; use it only on a trusted "
        "network or behind an authenticating HTTPS proxy."
    )


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise BadInputError(f"--port must be between 0 and 65535, not {args.port}.")
    if args.max_upload_mb <= 0:
        raise BadInputError(f"--max-upload-mb must be positive, not {args.max_upload_mb}.")
    warning = exposure_warning(args.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    try:
        from BreastSubtypeWeb.app import serve
    except ModuleNotFoundError as exc:
        raise BadInputError(
            f"The web app needs the 'web' extra ({exc.name} is missing): pip install 'breast-subtype[web]'."
        ) from exc
    serve(host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, model=args.model)
    return 0
