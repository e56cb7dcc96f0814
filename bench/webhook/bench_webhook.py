"""Webhook benchmark: `podinit serve` over TLS against a FastAPI no-op on the same server stack.

What runs (all on 127.0.0.1, everything started and stopped by this script):
- a real `docker-registry` with three pushed images (e2e/registry.py);
- `python -m webhook.cli.main serve` exactly as the tests start it (one uvicorn worker);
- a no-op FastAPI app (below: read the body, orjson-parse it, answer a small AdmissionReview
  echoing the uid) served through `webhook.server.serve.uvicorn_config` on uvloop, i.e. the
  same TLS, loop and HTTP settings as `podinit serve`;
- the same no-op as a plain ASGI app (how podinit serves /mutate), as a diagnostic;
- optionally (--uvloop) the FastAPI no-op on the stdlib asyncio loop too, as a diagnostic;
- optionally (--apiserver) tests/e2e's control plane, through which podinit then reads the
  pod's pull secret, as with the default `pullSecretLookups: true` in a cluster.

Load: vegeta (built with `go install` into $PODINIT_TOOLS_CACHE if missing), HTTP/1.1 with
keep-alive, --replicas ~8 KB AdmissionReviews in turn: the replicas of one 3-container
Deployment pod as the apiserver sends them (each its own request uid and ServiceAccount token
volume name), whose two looked-up images are already cached. Per server and round: saturation (closed loop, --workers in flight) then a
fixed rates (--rate and --extra-rates, open loop). Rounds alternate the servers; the least
disturbed round is reported (the machine is shared), with every round's numbers beside it.
Then: --burst concurrent admissions of one image nobody looked up yet, on pre-opened TLS
connections, and `podinit_registry_fetches_total` read from /metrics before and after.

Servers are pinned to CPU 0, this script and vegeta to CPU 1 (--no-pin to turn off).

The parts: servers.py (the baselines and starting them), load.py (vegeta, the cold burst),
reporting.py (the least disturbed round, the tables, the docs section).

Run: .venv/bin/python bench/webhook/bench_webhook.py [--quick] [--write-doc docs/performance.md]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import signal
import ssl
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(HERE)]

# The parts, beside this file: servers (baselines, starting them), load (vegeta, the cold
# burst), reporting (best rounds, tables, the docs section).
from load import Run, attack, cold_burst, outcome_deltas, vegeta  # noqa: E402
from reporting import rates, report  # noqa: E402
from servers import (  # noqa: E402
    JSON,
    LOAD_CPU,
    SERVER_CPU,
    Server,
    serve_child,
    start_apiserver,
    start_server,
)

from bench.webhook.history import RUNS_FILE  # noqa: E402

# -- main --------------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> int:
    import httpx

    from e2e.pki import CertAuthority

    # Stopped by a signal, still stop the servers and the registry (the ExitStack below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.pin:
        os.sched_setaffinity(0, {LOAD_CPU})
    tool = vegeta()
    load_before = _load_average()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-webhook-")))
        certs = CertAuthority(tmp / "pki", "bench")
        ca = ssl.create_default_context(cafile=str(certs.cert))
        # Offered to every server, sent only to the one that asks (podinit-mtls), as the
        # apiserver's AdmissionConfiguration would.
        apiserver_cert = certs.issue_client("kube-apiserver", "kube-apiserver")
        ca.load_cert_chain(apiserver_cert.cert, apiserver_cert.key)
        client = stack.enter_context(httpx.Client(verify=ca, timeout=30))
        registry_host = _registry_with_images(stack, tmp)
        api, worker = f"{registry_host}/shop/api:1.0", f"{registry_host}/shop/worker:2.3"
        bodies = _reviews(args, tmp, api=api, worker=worker)
        cold_body = _cold_review(registry_host, worker=worker)
        apiserver = start_apiserver(stack) if args.apiserver else None
        servers = _start_servers(
            stack,
            args,
            serving=certs.issue_server("serving"),
            ca=ca,
            tmp=tmp,
            env=_podinit_env(args, registry_host=registry_host, apiserver=apiserver),
            client_ca=certs.cert,
        )
        _warm_up_and_check(servers, client, bodies.first)
        print(
            f"AdmissionReview: {len(bodies.first)} bytes; servers: {', '.join(servers)}", flush=True
        )
        load = Load(
            tool=tool,
            body_files=bodies.files,
            ca_file=certs.cert,
            client_cert=apiserver_cert,
            tmp=tmp,
            client=client,
        )
        results = _measure_rounds(args, servers, load)
        burst = cold_burst(servers["podinit"], client, certs.cert, cold_body, args.burst)
        print(f"cold burst: {burst}", flush=True)
        _check_alive(servers)

    meta = _meta(load_before=load_before, body=bodies.first, with_apiserver=apiserver is not None)
    if args.json:
        raw = {k: {m: [r.__dict__ for r in v] for m, v in d.items()} for k, d in results.items()}
        Path(args.json).write_text(
            json.dumps({"meta": meta, "runs": raw, "burst": burst, "args": vars(args)}, indent=2)
        )
    return report(args, results, burst, meta)


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _registry_with_images(stack: ExitStack, tmp: Path) -> str:
    """A real registry holding the pod's two images and one nobody looks up before the cold
    burst; its host."""
    from e2e.registry import Pusher, start_registry

    registry = start_registry(tmp / "registry")
    stack.callback(registry.stop)
    pusher = Pusher(registry)
    pusher.image("shop/api", "1.0", entrypoint=["/usr/local/bin/api"], cmd=["--serve"])
    pusher.image("shop/worker", "2.3", entrypoint=["/bin/worker"], cmd=["run"], docker=True)
    pusher.image("shop/cold", "1.0", entrypoint=["/usr/local/bin/cold"], cmd=None)
    pusher.close()
    return registry.host


@dataclass
class Reviews:
    first: bytes  # the one checked and reported on
    files: list[Path]  # every replica's, for vegeta


def _reviews(args: argparse.Namespace, tmp: Path, *, api: str, worker: str) -> Reviews:
    from pod import replica_reviews

    bodies = replica_reviews(api, worker, args.replicas)
    files = []
    for number, replica in enumerate(bodies):
        files.append(tmp / f"review-{number}.json")
        files[-1].write_bytes(replica)
    return Reviews(first=bodies[0], files=files)


def _cold_review(registry_host: str, *, worker: str) -> bytes:
    from pod import realistic_pod, review_bytes

    return review_bytes(realistic_pod(f"{registry_host}/shop/cold:1.0", worker))


def _podinit_env(args: argparse.Namespace, *, registry_host: str, apiserver: Any) -> dict[str, str]:
    env = {
        "PODINIT_INSECURE_REGISTRIES": json.dumps([registry_host]),
        "PODINIT_TIMEOUT_SECONDS": str(int(args.timeout)),
        # The burst's connections plus the client's: over maxConnections (default 1000)
        # the extra ones would be closed at once, and the burst measures the single
        # registry fetch, not that cap.
        "PODINIT_MAX_CONNECTIONS": str(args.burst + 100),
    }
    if apiserver is not None:  # pull-secret lookups, on by default, read through it
        env["PODINIT_KUBECONFIG"] = str(apiserver.kubeconfig)
    return env


def _server_command(name: str, *, port: int, cert_file: Path, key_file: Path) -> list[str]:
    """podinit as the tests start it, or a baseline `name` = app[-loop] run by this script."""
    if name.startswith("podinit"):
        return [sys.executable, "-m", "webhook.cli.main", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--tls-cert-file", str(cert_file),
                "--tls-key-file", str(key_file)]  # fmt: skip
    app, _, loop = name.partition("-")
    return [sys.executable, str(Path(__file__).resolve()), "_serve",
            "--app", app, "--loop", loop or "asyncio", "--port", str(port),
            "--cert", str(cert_file), "--key", str(key_file)]  # fmt: skip


def _start_servers(
    stack: ExitStack,
    args: argparse.Namespace,
    *,
    serving: Any,
    ca: ssl.SSLContext,
    tmp: Path,
    env: dict[str, str],
    client_ca: Path,
) -> dict[str, Server]:
    """The baselines, podinit, and podinit with mutual TLS (`clientCaFile`: it refuses a
    caller without a certificate of `client_ca` at the handshake)."""
    from e2e.processes import free_port

    names = ["noop-uvloop", "podinit", "podinit-mtls", "rawnoop-uvloop"]
    names += ["noop"] if args.uvloop else []
    mutual_tls = {"PODINIT_CLIENT_CA_FILE": str(client_ca)}
    servers: dict[str, Server] = {}
    for name in names:
        port = free_port()
        command = _server_command(name, port=port, cert_file=serving.cert, key_file=serving.key)
        servers[name] = stack.enter_context(
            start_server(
                name,
                command,
                port=port,
                env={**env, **mutual_tls} if name == "podinit-mtls" else env,
                tmp=tmp,
                ca=ca,
                cpu=SERVER_CPU if args.pin else None,
                has_metrics=name.startswith("podinit"),
            )
        )
    return servers


def _warm_up_and_check(servers: dict[str, Server], client: Any, body: bytes) -> None:
    """Warm the cache and check what podinit answers before measuring anything."""
    for server in servers.values():
        answer = client.post(f"{server.url}/mutate", content=body, headers={"content-type": JSON})
        answer.raise_for_status()
        if server.has_metrics:
            response = answer.json()["response"]
            patch = orjson.loads(base64.b64decode(response["patch"]))
            commands = [op for op in patch if str(op.get("path", "")).endswith("/command")]
            assert len(commands) == 2, f"expected api and worker wrapped: {patch}"


@dataclass
class Load:
    """What every vegeta run of the bench shares."""

    tool: str
    body_files: list[Path]
    ca_file: Path
    client_cert: Any  # e2e.pki.IssuedCert: what the apiserver presents
    tmp: Path
    client: Any  # for podinit's /metrics


def _measure_rounds(
    args: argparse.Namespace, servers: dict[str, Server], load: Load
) -> dict[str, dict[str, list[Run]]]:
    """Every round, alternating the servers: saturation, then each fixed rate."""
    results: dict[str, dict[str, list[Run]]] = {}
    for round_ in range(args.rounds):
        for name, server in servers.items():
            # a short warm-up so every round starts with open connections and warm caches
            attack(load.tool, server, load.body_files, load.ca_file, load.tmp, mode="saturation",
                   duration=1, rate=args.rate, workers=args.workers, timeout=args.timeout,
                   client_cert=load.client_cert)  # fmt: skip
            for mode in ["saturation", *(f"rate@{r}" for r in rates(args))]:
                run = _measure(args, server, load, mode=mode)
                results.setdefault(name, {}).setdefault(mode, []).append(run)
                time.sleep(1)  # let whatever vegeta gave up on drain before the next run
                print(
                    f"round {round_ + 1} {name:15} {mode:10} {run.throughput:8.0f}/s "
                    f"p50 {run.p50_ms:6.2f} p99 {run.p99_ms:7.2f} max {run.max_ms:7.1f} ms "
                    f"success {run.success:.4f} {run.server_outcomes or ''} "
                    f"{' '.join(run.errors)}",
                    flush=True,
                )
    return results


def _measure(args: argparse.Namespace, server: Server, load: Load, *, mode: str) -> Run:
    """One vegeta run, with podinit's admissions by outcome counted over it."""
    before = server.metrics(load.client) if server.has_metrics else {}
    run = attack(
        load.tool,
        server,
        load.body_files,
        load.ca_file,
        load.tmp,
        mode=mode.partition("@")[0],
        duration=args.duration,
        rate=int(mode.partition("@")[2] or 0),
        workers=args.workers,
        timeout=args.timeout,
        client_cert=load.client_cert,
    )
    if server.has_metrics:
        run.server_outcomes = outcome_deltas(before, server.metrics(load.client))
    return run


def _check_alive(servers: dict[str, Server]) -> None:
    for server in servers.values():
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} died:\n{server.log.read_text()[-3000:]}")


def _meta(*, load_before: str, body: bytes, with_apiserver: bool) -> dict[str, Any]:
    """Where and how the run was measured, for the report."""
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Linux {platform.release()}, Python {platform.python_version()}",
        "load_before": load_before,
        "load_after": _load_average(),
        "body_bytes": len(body),
        "apiserver": (
            "podinit reads the pod's pull secret through a real kube-apiserver (tests/e2e's "
            "control plane, pinned to the load CPU), as with the default "
            "`pullSecretLookups: true`, and its namespace gate reads the webhook "
            "configuration the chart installs (`webhookConfiguration`), which selects the "
            "pod's namespace; the no-ops do nothing of the kind."
            if with_apiserver
            else "No apiserver ran (see `--apiserver`): podinit read no pull secrets, unlike "
            "with the default `pullSecretLookups: true`."
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    child = sub.add_parser("_serve", help="internal: run one server")
    child.add_argument("--app", choices=["noop", "rawnoop", "podinit"], required=True)
    child.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    child.add_argument("--port", type=int, required=True)
    child.add_argument("--cert", required=True)
    child.add_argument("--key", required=True)
    parser.add_argument("--duration", type=float, default=5, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=int, default=1000, help="target rate, admissions/s")
    parser.add_argument("--extra-rates", default="250", help="more fixed rates, comma-separated")
    parser.add_argument("--workers", type=int, default=8, help="in flight at saturation")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--replicas", type=int, default=200, help="distinct reviews, in turn")
    parser.add_argument("--timeout", type=float, default=5, help="webhook timeoutSeconds")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false",
                        help="skip the diagnostic asyncio-loop no-op")  # fmt: skip
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--apiserver", action="store_true",
                        help="podinit reads pull secrets through a real control plane (its idle "
                        "load on the same cores lengthens every server's tail)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s (smoke test)")
    parser.add_argument("--json", help="write raw results here")
    parser.add_argument("--write-doc", help="replace the ## Webhook section of this file "
                        "and record the run (unless --quick) in --runs-file")  # fmt: skip
    parser.add_argument("--runs-file", default=str(RUNS_FILE),
                        help="every recorded run's headline, one JSON line each")  # fmt: skip
    parser.add_argument("--readme", help="rewrite the webhook row of this README's table")
    parser.add_argument("--from-json", help="report a run saved with --json, measure nothing")
    parser.add_argument("--notes", help="extra markdown bullet lines for the doc's notes")
    args = parser.parse_args()
    if args.command == "_serve":
        serve_child(args)
        return 0
    if args.quick:
        args.rounds, args.duration = 1, 3
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        for key in ("duration", "rounds", "rate", "extra_rates", "workers", "burst", "timeout",
                    "pin"):  # fmt: skip
            setattr(args, key, saved["args"][key])
        results = {
            name: {mode: [Run(**run) for run in runs] for mode, runs in modes.items()}
            for name, modes in saved["runs"].items()
        }
        return report(args, results, saved["burst"], saved["meta"], measured=False)
    return bench(args)


if __name__ == "__main__":
    sys.exit(main())
