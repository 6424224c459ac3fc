"""``breast-subtype models list|download ID|install FILE|path [ID]``: the model registry."""

from __future__ import annotations

import argparse

HELP = "list, download (verified by SHA-256), install from a file, or locate models"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="models in the registry, whether installed, measured speed")
    download = actions.add_parser("download", help="download a model into the user cache and verify it")
    download.add_argument("model_id", metavar="ID")
    install = actions.add_parser("install", help="install a model package zip (offline sites)")
    install.add_argument("file", metavar="FILE")
    install.add_argument("--id", dest="model_id", help="registry id the file must match")
    where = actions.add_parser("path", help="the user cache folder, or where model ID is installed")
    where.add_argument("model_id", metavar="ID", nargs="?")


def run(args: argparse.Namespace) -> int:
    from BreastSubtypeLib.model import registry

    if args.action == "list":
        print(f"{'id':<16} {'version':<10} {'installed':<9} {'cpu s':>6} {'gpu s':>6}  title")
        for entry in registry.list_models():
            cpu = f"{entry.cpu_seconds:.1f}" if entry.cpu_seconds is not None else "-"
            gpu = f"{entry.gpu_seconds:.2f}" if entry.gpu_seconds is not None else "-"
            installed = "yes" if registry.is_installed(entry) else "no"
            title = entry.title + ("  [DEMONSTRATION]" if entry.demonstration else "")
            print(f"{entry.id:<16} {entry.version:<10} {installed:<9} {cpu:>6} {gpu:>6}  {title}")
        return 0
    if args.action == "download":
        from BreastSubtypeLib.progress import TqdmProgress

        bar = TqdmProgress(f"download {args.model_id}")
        try:
            folder = registry.download(args.model_id, progress=bar)
        finally:
            bar.close()
        print(folder)
        return 0
    if args.action == "install":
        print(registry.install_from_file(args.file, model_id=args.model_id))
        return 0
    print(registry.resolve(args.model_id) if args.model_id else registry.cache_dir())
    return 0
