"""``azure-arm-emulator`` (also ``python -m azure_arm_emulator``): run the ARM emulator."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .app import Emulator


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="azure-arm-emulator", description="Run the local Azure Resource Manager emulator (HTTPS)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    parser.add_argument("--state-dir", default=None, help="directory for durable state and the CA (default: memory)")
    parser.add_argument(
        "--latency-scale",
        type=float,
        default=1.0,
        help="multiplier of realistic operation latencies (VM create ~30 s); 0 = instant (default 1.0)",
    )
    parser.add_argument(
        "--throttling",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="enforce ARM/Compute/Network throttling with Azure's token buckets (default on)",
    )
    parser.add_argument(
        "--throttle-scale",
        type=float,
        default=1.0,
        help="multiplier of every throttling bucket size and refill rate (default 1.0 = Azure's limits)",
    )
    return parser


async def serve(args: argparse.Namespace) -> None:
    emulator = Emulator(state_dir=args.state_dir, latency_scale=args.latency_scale, throttling=args.throttling,
                        throttle_scale=args.throttle_scale)
    await emulator.start(host=args.host, port=args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"Azure Resource Manager emulator listening on {emulator.url}")
    print(f"CA certificate: {emulator.ca_path}")
    print("Point the operator / Azure SDK at it with:")
    print(f"  export AZURE_ENDPOINT={emulator.url}")
    print(f"  export AZURE_CA={emulator.ca_path}")
    print(f"  export AZURE_AUTHORITY_HOST={emulator.url} AZURE_DISABLE_INSTANCE_DISCOVERY=true")
    print("  export AZURE_TENANT_ID=emulator AZURE_CLIENT_ID=emulator AZURE_CLIENT_SECRET=emulator")
    print("  export AZURE_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000001   # any subscription id works")
    print("  azure-vm-operator run", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0
