"""``python -m kubeapi --port N --kubeconfig PATH [--token T] [--crd FILE ...]``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import yaml

from .server import KubeAPIServer


async def _main(args: argparse.Namespace) -> None:
    api = KubeAPIServer(token=args.token)
    await api.start(host=args.host, port=args.port)
    for path in args.crd or []:
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    api.register_crd(doc)
    if args.kubeconfig:
        api.write_kubeconfig(args.kubeconfig)
    print(api.url, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await api.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubeapi",
                                     description="A small in-memory Kubernetes API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", help="write a kubeconfig pointing at the server to this path")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--crd", action="append", help="a YAML file with CRDs to register at start (repeatable)")
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
