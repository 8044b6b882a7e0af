"""Command line: `azvm-sandbox demo`. Thin: parse flags, start the demo."""

from __future__ import annotations

import argparse
import logging
import sys

from . import demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="azvm-sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    one = sub.add_parser("demo", help="embedded emulator + Kubernetes API + operator: a VM, a "
                         "scale set, then an autoscaled scale set scaled out by a CPU spike, from apply to delete")
    one.add_argument("--example", default=None, help=f"manifest to apply (default: ./{demo.DEFAULT_EXAMPLE})")
    one.add_argument("--scaleset-example", default=None,
                     help=f"ScaleSet manifest for the second part (default: ./{demo.DEFAULT_SCALESET_EXAMPLE}; "
                          "skipped if missing)")
    one.add_argument("--crds", default=None, help=f"folder of the CRDs to serve (default: ./{demo.DEFAULT_CRDS})")
    one.add_argument("--latency-scale", type=float, default=0.1,
                     help="emulated Azure latency, as a fraction of real Azure's (default 0.1)")
    one.add_argument("--keep", action="store_true", help="do not delete the VM and the scale set at the end")

    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return demo.main(example=args.example, crds=args.crds, latency_scale=args.latency_scale, keep=args.keep,
                     scaleset_example=args.scaleset_example)


if __name__ == "__main__":
    sys.exit(main())
