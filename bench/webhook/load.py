"""Load for the webhook benchmark: vegeta (built once into the tools cache) at saturation
and at fixed rates, the server's CPU per admission, and the cold burst of concurrent
admissions of one uncached image on pre-opened TLS connections."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servers import Server

VEGETA_VERSION = "v12.13.0"
VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
TOOLS_CACHE = Path(os.environ.get("PODINIT_TOOLS_CACHE", Path.home() / ".cache" / "podinit-tools"))


# -- tools -------------------------------------------------------------------------------------


def vegeta() -> str:
    """The vegeta binary, built once into the tools cache (never into the repository)."""
    target = TOOLS_CACHE / f"vegeta-{VEGETA_VERSION}" / "vegeta"
    if target.exists():
        return str(target)
    go = shutil.which("go") or "/usr/local/go/bin/go"
    staging = Path(tempfile.mkdtemp(prefix=f"vegeta-{VEGETA_VERSION}.", dir=TOOLS_CACHE))
    print(f"building vegeta {VEGETA_VERSION} into {target.parent} ...", flush=True)
    subprocess.run(
        [go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
        env={**os.environ, "GOBIN": str(staging), "CGO_ENABLED": "0"},
        check=True,
        cwd=tempfile.gettempdir(),
    )
    try:
        staging.rename(target.parent)
    except OSError:  # someone else finished first
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


# -- load --------------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    mode: str  # "saturation" or "rate@N"
    requests: int
    throughput: float  # successful responses per second
    success: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    status_codes: dict[str, int]
    errors: list[str]
    cpu_us: float = 0.0  # server CPU time (user+system, all threads) per request
    target_rate: int = 0
    server_outcomes: dict[str, float] = field(default_factory=dict)
    rounds_throughput: list[float] = field(default_factory=list)
    rounds_p99: list[float] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def attack(
    tool: str,
    server: Server,
    body_files: list[Path],
    ca_file: Path,
    tmp: Path,
    *,
    mode: str,
    duration: float,
    rate: int,
    workers: int,
    timeout: float,
    client_cert: Any = None,
) -> Run:
    targets = tmp / "targets.txt"
    # vegeta sends the targets in turn
    targets.write_text(
        "\n".join(
            f"POST {server.url}/mutate\nContent-Type: application/json\n@{body}\n"
            for body in body_files
        )
    )
    flags = [
        f"-targets={targets}",
        f"-root-certs={ca_file}",
        f"-duration={duration}s",
        f"-timeout={timeout}s",
        "-keepalive=true",
        "-http2=false",
    ]
    if client_cert is not None:  # e2e.pki.IssuedCert, sent to a server that asks for one
        flags += [f"-cert={client_cert.cert}", f"-key={client_cert.key}"]
    if mode == "saturation":
        flags += ["-rate=0", f"-workers={workers}", f"-max-workers={workers}"]
    else:
        # bounded, so an overloaded server is reported as "rate not reached", not as a flood
        flags += [f"-rate={rate}/1s", "-workers=16", "-max-workers=256"]
    cpu_before = cpu_seconds(server.process.pid)
    attacked = subprocess.run([tool, "attack", *flags], capture_output=True, check=True)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    report = subprocess.run(
        [tool, "report", "-type=json"], input=attacked.stdout, capture_output=True, check=True
    )
    data = json.loads(report.stdout)
    lat = data["latencies"]
    return Run(
        server=server.name,
        mode=mode,
        requests=data["requests"],
        throughput=data["throughput"],
        success=data["success"],
        p50_ms=lat["50th"] / 1e6,
        p90_ms=lat["90th"] / 1e6,
        p99_ms=lat["99th"] / 1e6,
        max_ms=lat["max"] / 1e6,
        status_codes=data["status_codes"],
        errors=sorted(set(data.get("errors") or []))[:5],
        cpu_us=cpu / max(1, data["requests"]) * 1e6,
        target_rate=0 if mode == "saturation" else rate,
    )


def outcome_deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    deltas = {}
    for key, value in after.items():
        if key.startswith("podinit_admissions_total{"):
            outcome = key.split('"')[1]
            deltas[outcome] = value - before.get(key, 0.0)
    return {k: v for k, v in deltas.items() if v}


# -- the cold burst ----------------------------------------------------------------------------


async def _burst(host: str, port: int, ca_file: Path, body: bytes, n: int) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(ca_file))
    request = (
        b"POST /mutate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    opened = time.perf_counter()
    connections = await asyncio.gather(
        *(asyncio.open_connection(host, port, ssl=context) for _ in range(n))
    )
    open_s = time.perf_counter() - opened
    sent: list[float] = [0.0] * n

    async def answer(i: int, reader: asyncio.StreamReader) -> tuple[int, float, bytes]:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
        payload = await reader.readexactly(length)
        return status, time.perf_counter() - sent[i], payload

    readers = [asyncio.create_task(answer(i, reader)) for i, (reader, _w) in enumerate(connections)]
    await asyncio.sleep(0)
    started = time.perf_counter()
    for i, (_r, writer) in enumerate(connections):
        sent[i] = time.perf_counter()
        writer.write(request)
    written_s = time.perf_counter() - started
    results = await asyncio.gather(*readers)
    wall = time.perf_counter() - started
    for _r, writer in connections:
        writer.close()
    latencies = sorted(r[1] for r in results)
    patched = sum(1 for r in results if b'"patch"' in r[2])
    warned = sum(1 for r in results if b'"warnings"' in r[2])
    return {
        "admissions": n,
        "connections_open_s": round(open_s, 3),
        "all_sent_within_ms": round(written_s * 1000, 2),
        "wall_ms": round(wall * 1000, 1),
        "status_200": sum(1 for r in results if r[0] == 200),
        "with_patch": patched,
        "with_warnings": warned,
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 1),
        "max_ms": round(latencies[-1] * 1000, 1),
    }


def cold_burst(server: Server, client: Any, ca_file: Path, body: bytes, n: int) -> dict[str, Any]:
    import uvloop

    before = server.metrics(client)
    cpu_before = cpu_seconds(server.process.pid)
    port = int(server.url.rsplit(":", 1)[1])
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(_burst("127.0.0.1", port, ca_file, body, n))
    cpu = cpu_seconds(server.process.pid) - cpu_before
    after = server.metrics(client)

    def delta(key: str) -> int:
        return int(after.get(key, 0) - before.get(key, 0))

    fetches = delta("podinit_registry_fetches_total")
    hits = delta("podinit_image_cache_hits_total")
    ok = delta('podinit_registry_lookups_total{result="ok"}')
    result.update(
        registry_fetches=fetches,
        registry_fetches_total_after=int(after.get("podinit_registry_fetches_total", 0)),
        lookups_ok=ok,
        cache_hits=hits,
        joined_in_flight=delta("podinit_registry_joined_total"),
        outcomes=outcome_deltas(before, after),
        lookups={
            key.split('"')[1]: int(value - before.get(key, 0))
            for key, value in after.items()
            if key.startswith("podinit_registry_lookups_total{") and value != before.get(key, 0)
        },
        containers={
            key.partition("{")[2].rstrip("}"): int(value - before.get(key, 0))
            for key, value in after.items()
            if key.startswith("podinit_containers_total{") and value != before.get(key, 0)
        },
        server_cpu_s=round(cpu, 2),
    )
    return result
