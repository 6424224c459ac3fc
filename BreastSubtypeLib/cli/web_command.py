"""``breast-subtype web``: the BreastSubtype app in the browser (trame-slicer on Slicer's core).

Listens on 127.0.0.1 with a random access token unless told otherwise; any other address needs TLS
(``--tls-cert``/``--tls-key``) or an explicit ``--insecure-remote``. The web packages (trame-slicer,
slicer-core) are imported only inside ``run``, so the rest of the CLI never needs them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from BreastSubtypeLib.errors import BadInputError
from BreastSubtypeWeb.security import LOOPBACK_HOSTS, TOKEN_ENV, check_token, new_token, normalise_origin
from BreastSubtypeWeb.session import DEFAULT_IMAGE_MEMORY_MB, DEFAULT_MAX_UPLOAD_MB

HELP = "serve the BreastSubtype app in a web browser (slice views, 3-D view, one-click tumour, results)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=8080, help="TCP port (0 picks a free one; default 8080)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only); any other address needs "
        "--tls-cert/--tls-key or --insecure-remote",
    )
    parser.add_argument(
        "--token",
        default=None,
        help=f"access token of this server (default: ${TOKEN_ENV}, else a random one); it is part of the "
        "link printed at start. Prefer the environment variable: a command line is visible to other users",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name browsers use for this server (the reverse proxy's public name); repeatable",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="URL",
        help="another origin allowed to open the WebSocket (e.g. https://launcher.example:443 when a "
        "launcher serves the page); repeatable",
    )
    parser.add_argument("--tls-cert", type=Path, default=None, help="TLS certificate (PEM) to serve HTTPS")
    parser.add_argument("--tls-key", type=Path, default=None, help="private key (PEM) of --tls-cert")
    parser.add_argument(
        "--insecure-remote",
        action="store_true",
        help="allow a non-loopback --host without TLS (only behind a TLS-terminating proxy on a trusted "
        "network); the access token is still required",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD_MB,
        help=f"largest accepted upload in MB (default {DEFAULT_MAX_UPLOAD_MB})",
    )
    parser.add_argument(
        "--image-memory-mb",
        type=float,
        default=DEFAULT_IMAGE_MEMORY_MB,
        help="memory budget of one uploaded image once decoded, in MB, checked from its header before "
        f"any voxel is read (default {DEFAULT_IMAGE_MEMORY_MB})",
    )
    parser.add_argument(
        "--model", default="demo", help="registry id or model package folder/zip used by Run (default: demo)"
    )
    parser.add_argument(
        "--idle-timeout",
        type=int,
        default=0,
        metavar="SECONDS",
        help="stop this server (and remove its session folder) when no browser has been connected for "
        "this long (default 0: never); sessions started by a launcher use it",
    )
    shared = parser.add_argument_group(
        "several users (one session each, through wslink's launcher; see docs/web.md)"
    )
    shared.add_argument(
        "--launcher-config",
        type=Path,
        default=None,
        metavar="DIR",
        help="write launcher.json and the page's files into DIR for 'python -m wslink.launcher "
        "DIR/launcher.json', then exit",
    )
    shared.add_argument("--launcher-port", type=int, default=9000, help="port of the launcher (default 9000)")
    shared.add_argument(
        "--session-ports", default="9001-9020", help="ports for the sessions, FIRST-LAST (default 9001-9020)"
    )
    shared.add_argument(
        "--public-origin",
        default=None,
        metavar="URL",
        help="the origin browsers open the launcher at (default http://127.0.0.1:LAUNCHER_PORT); behind "
        "a reverse proxy, its https:// address",
    )


def exposure_warning(host: str, tls: bool) -> str | None:
    """The warning printed when the server is reachable from other machines."""
    if host in LOOPBACK_HOSTS:
        return None
    transport = "over HTTPS" if tls else "WITHOUT TLS (the token and images cross the network in clear)"
    return (
        f"WARNING: listening on {host} {transport}: anyone who has the link with its token can upload "
        "images, see results and download reports. Give each user their own session (docs/web.md)."
    )


def _origin(value: str) -> str:
    origin = normalise_origin(value)
    if not origin.startswith(("http://", "https://")) or "/" in origin.split("://", 1)[1]:
        raise BadInputError(f"--allow-origin takes scheme://host[:port], not '{value}'.")
    return origin


def _tls_files(args: argparse.Namespace) -> tuple[Path, Path] | None:
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise BadInputError("--tls-cert and --tls-key go together.")
    for path in (args.tls_cert, args.tls_key):
        if not path.is_file():
            raise BadInputError(f"The TLS file {path} does not exist.")
    return args.tls_cert.resolve(), args.tls_key.resolve()


def access_token(args: argparse.Namespace) -> str:
    given = args.token or os.environ.get(TOKEN_ENV)
    return check_token(given) if given else new_token()


def write_launcher(args: argparse.Namespace) -> int:
    from BreastSubtypeWeb.launcher import parse_port_range, write_launcher_setup

    origin = _origin(args.public_origin or f"http://127.0.0.1:{args.launcher_port}")
    extra = ["--max-upload-mb", f"{args.max_upload_mb:g}", "--image-memory-mb", f"{args.image_memory_mb:g}"]
    extra += ["--model", args.model, *(f"--allow-host={name}" for name in args.allow_host)]
    setup = write_launcher_setup(
        args.launcher_config,
        public_origin=origin,
        launcher_port=args.launcher_port,
        session_ports=parse_port_range(args.session_ports),
        idle_timeout_s=args.idle_timeout or 300,
        extra_args=tuple(extra),
    )
    print(f"Wrote {setup.config} and {setup.www}. Start the launcher with:")
    print(f"    {sys.executable} -m wslink.launcher {setup.config}")
    print(f"and open {origin}/ (each browser gets its own session).")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.idle_timeout < 0:
        raise BadInputError(f"--idle-timeout must be 0 or more seconds, not {args.idle_timeout}.")
    if args.launcher_config is not None:
        return write_launcher(args)
    if not 0 <= args.port <= 65535:
        raise BadInputError(f"--port must be between 0 and 65535, not {args.port}.")
    if args.max_upload_mb <= 0:
        raise BadInputError(f"--max-upload-mb must be positive, not {args.max_upload_mb}.")
    if args.image_memory_mb <= 0:
        raise BadInputError(f"--image-memory-mb must be positive, not {args.image_memory_mb}.")
    tls = _tls_files(args)
    if args.host not in LOOPBACK_HOSTS and tls is None and not args.insecure_remote:
        raise BadInputError(
            f"Refusing to listen on {args.host} without TLS: give --tls-cert and --tls-key, or "
            "--insecure-remote if a TLS-terminating proxy on a trusted network stands in front."
        )
    token = access_token(args)
    origins = tuple(_origin(value) for value in args.allow_origin)
    warning = exposure_warning(args.host, tls is not None)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    try:
        from BreastSubtypeWeb.app import serve
    except ModuleNotFoundError as exc:
        raise BadInputError(
            f"The web app needs the 'web' extra ({exc.name} is missing): pip install 'breast-subtype[web]'."
        ) from exc
    serve(
        host=args.host,
        port=args.port,
        token=token,
        allow_hosts=tuple(args.allow_host),
        allow_origins=origins,
        tls=tls,
        max_upload_mb=args.max_upload_mb,
        image_memory_mb=args.image_memory_mb,
        model=args.model,
        idle_timeout_s=args.idle_timeout,
    )
    return 0
