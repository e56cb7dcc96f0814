"""The `podinit` command line: `inject -f` offline, `serve` the webhook, `scan` a cluster."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from webhook import __version__
from webhook.cli import inject
from webhook.cli.image_sources import OfflineLookup, RegistryLookup
from webhook.config import ConfigError, load


def _kubernetes_version(text: str) -> tuple[int, int]:
    try:
        major, minor = text.removeprefix("v").split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a Kubernetes version like 1.35: {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="podinit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"podinit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("inject", help="wrap the containers of pods and workloads in manifests")
    p.add_argument(
        "-f",
        "--filename",
        required=True,
        action="append",
        help="a file, a directory, or - for stdin; repeat for more",
    )
    p.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    p.add_argument(
        "--explain", action="store_true", help="print the decision per container to stderr"
    )
    p.add_argument(
        "--image-config",
        type=Path,
        help="YAML of IMAGE: {entrypoint: [...], cmd: [...]}; IMAGE may be an fnmatch pattern "
        "as in imageOverrides (registry.local/app:*), the first matching key wins",
    )
    p.add_argument("--offline", action="store_true", help="never contact a registry")
    p.add_argument("--config", type=Path, help="podinit config file (YAML, camelCase keys)")
    p.add_argument(
        "--kubernetes-version", type=_kubernetes_version, help="target cluster, e.g. 1.35"
    )

    p = commands.add_parser("serve", help="run the mutating admission webhook over TLS")
    p.add_argument("--config", type=Path, help="podinit config file (YAML, camelCase keys)")
    p.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, help="port to listen on (default 8443)")
    p.add_argument("--tls-cert-file", type=Path, help="serving certificate (PEM), reloaded")
    p.add_argument("--tls-key-file", type=Path, help="its private key (PEM)")
    p.add_argument("--kubeconfig", type=Path, help="outside a cluster: API access for pull secrets")

    p = commands.add_parser("scan", help="report which pods in a cluster lack an init")
    p.add_argument("-n", "--namespace", help="one namespace (default: all namespaces)")
    p.add_argument("-o", "--output", choices=["table", "json", "image-config"], default="table")
    p.add_argument("--config", type=Path, help="podinit config file (YAML, camelCase keys)")
    p.add_argument("--kubeconfig", type=Path, help="default: $KUBECONFIG or ~/.kube/config")
    p.add_argument(
        "--kubernetes-version", type=_kubernetes_version, help="decide as for, e.g. 1.35"
    )
    p.add_argument(
        "--fail-on-unwrapped",
        action="store_true",
        help="exit 1 when a container is failed or slipped (errors: 2)",
    )
    return parser


def _scan(args: argparse.Namespace) -> int:
    from webhook.cli import scan  # the Kubernetes client's imports are heavy; inject needs none

    try:  # 1 means unwrapped pods (--fail-on-unwrapped): every error is 2, as argparse's
        config = load(args.config, kubeconfig=args.kubeconfig)
        settings = config.inject_settings(kubernetes_version=args.kubernetes_version)
        return scan.run(
            config,
            settings,
            namespace=args.namespace,
            output=args.output,
            fail_on_unwrapped=args.fail_on_unwrapped,
        )
    except (scan.ScanError, ConfigError) as error:
        print(f"podinit: {error}", file=sys.stderr)
        return 2


def _serve(args: argparse.Namespace) -> int:
    from webhook.server.serve import serve  # the server's imports are heavy; inject needs none

    flags = {
        "host": args.host,
        "port": args.port,
        "tls_cert_file": args.tls_cert_file,
        "tls_key_file": args.tls_key_file,
        "kubeconfig": args.kubeconfig,
    }
    config = load(args.config, **flags)
    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        runner.run(serve(config))
    return 0


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): less CPU per admission."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _inject(args: argparse.Namespace) -> int:
    config = load(args.config)
    settings = config.inject_settings(kubernetes_version=args.kubernetes_version)
    known = inject.read_image_configs(args.image_config) if args.image_config else ()
    if args.offline:
        lookup = OfflineLookup(known, image_config=args.image_config is not None)
        return inject.run(args.filename, settings, lookup, output=args.output, explain=args.explain)
    with RegistryLookup(config, known) as online:
        return inject.run(args.filename, settings, online, output=args.output, explain=args.explain)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)  # argparse requires one of these commands
    command = {"inject": _inject, "serve": _serve, "scan": _scan}[args.command]
    try:
        return command(args)
    except (inject.InputError, ConfigError) as error:
        print(f"podinit: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `podinit inject ... | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
