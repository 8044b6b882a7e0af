"""Command line: `azure-vm-operator run`. Thin: parse flags, build config, start the operator."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import replace

from . import logs
from .config import OperatorConfig
from .sharding import Shard


def _config(args: argparse.Namespace) -> OperatorConfig:
    config = OperatorConfig.from_env(
        kubeconfig=args.kubeconfig,
        namespace=args.namespace,
        cluster_id=args.cluster_id,
        azure_endpoint=args.azure_endpoint,
        azure_ca=args.azure_ca,
        azure_authority_host=args.azure_authority_host,
        subscription_id=args.subscription_id,
        resync_interval=args.resync_interval,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        leader_elect=True if args.leader_elect else None,
        leader_election_namespace=args.leader_election_namespace,
        shard_count=args.shard_count,
        shard_index=args.shard_index,
        selector=args.selector,
        prometheus_url=args.prometheus_url,
        log_format=args.log_format,
    )
    config = replace(config, log_format=config.log_format.strip().lower())
    if config.log_format not in logs.LOG_FORMATS:
        raise ValueError(f"{logs.ENV_VAR}={config.log_format!r}: one of {', '.join(logs.LOG_FORMATS)}")
    Shard.of(config)  # validates the shard settings
    return config


def _run(args: argparse.Namespace, config: OperatorConfig) -> int:
    from .runner import run_operator

    stop = None

    async def main_with_signals() -> bool:
        nonlocal stop
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        return await run_operator(config, stop_flag=stop)

    lost = asyncio.run(main_with_signals())
    return 1 if lost else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="azure-vm-operator", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the operator against the current kubeconfig (or in-cluster)")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, then $KUBECONFIG, ~/.kube/config)")
    run.add_argument("--namespace", help="watch only this namespace (default: all namespaces)")
    run.add_argument("--cluster-id", help="identifies this cluster in Azure ownership tags [AZVM_CLUSTER_ID]")
    run.add_argument("--azure-endpoint", help="ARM endpoint [AZURE_ENDPOINT] (default: public Azure)")
    run.add_argument("--azure-ca", help="CA bundle to trust for ARM and the authority [AZURE_CA]")
    run.add_argument("--azure-authority-host", help="Entra ID authority [AZURE_AUTHORITY_HOST]")
    run.add_argument("--subscription-id", help="default subscription [AZURE_SUBSCRIPTION_ID]")
    run.add_argument("--resync-interval", type=float, help="seconds between drift checks [AZVM_RESYNC_INTERVAL]")
    run.add_argument("--metrics-port", type=int, help="Prometheus metrics port [AZVM_METRICS_PORT] (default 8080)")
    run.add_argument("--health-port", type=int,
                     help="serve /healthz and /readyz for the kubelet's probes on this port [AZVM_HEALTH_PORT] (default: off)")
    run.add_argument("--leader-elect", action="store_true",
                     help="run several replicas: only the holder of a Lease acts [AZVM_LEADER_ELECT]")
    run.add_argument("--leader-election-namespace", help="namespace of the Lease [POD_NAMESPACE] (default: default)")
    run.add_argument("--shard-count", type=int,
                     help="split the resources into this many shards, one per replica [AZVM_SHARD_COUNT] (default 1)")
    run.add_argument("--shard-index", type=int,
                     help="the shard this replica reconciles, 0 .. count-1 [AZVM_SHARD_INDEX] (default 0)")
    run.add_argument("--selector", help="reconcile only resources with these labels, e.g. team=a [AZVM_SELECTOR]")
    run.add_argument("--prometheus-url",
                     help="Prometheus server of autoscale rules without serverAddress [AZVM_PROMETHEUS_URL]")
    run.add_argument("--log-format", choices=logs.LOG_FORMATS,
                     help=f"text, or json: one object per line with the resource's kind, namespace and name "
                          f"[{logs.ENV_VAR}] (default: text)")
    run.add_argument("--verbose", "-v", action="store_true")
    run.add_argument("--debug", action="store_true")

    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = _config(args)
    except ValueError as exc:  # a shard index out of range, a number that is none, an unknown log format
        parser.error(str(exc))
    logs.configure(config.log_format, verbose=args.verbose, debug=args.debug)
    return _run(args, config)


if __name__ == "__main__":
    sys.exit(main())
