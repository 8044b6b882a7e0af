"""Azure Monitor's metrics API for one resource (e.g. a scale set's "Percentage CPU"): the request and the reading
of its answer. Pure."""

from __future__ import annotations

import datetime
from typing import Any, Mapping
from urllib.parse import quote, urlencode

from ..api.conditions import parse_rfc3339

API_VERSION = "2024-02-01"
AGGREGATIONS = ("Average", "Minimum", "Maximum", "Total", "Count")


def iso_duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "") \
        if seconds else "PT0S"


def metrics_path(resource_id: str, metric: str = "Percentage CPU", aggregation: str = "Average",
                 grain_seconds: float = 60, window_seconds: float = 300,
                 now: datetime.datetime | None = None) -> str:
    """``{resource}/providers/Microsoft.Insights/metrics?...`` for the last ``window_seconds``."""
    end = now or datetime.datetime.now(datetime.timezone.utc)
    start = end - datetime.timedelta(seconds=window_seconds)
    query = urlencode({
        "api-version": API_VERSION,
        "metricnames": metric,
        "aggregation": aggregation.lower(),
        "interval": iso_duration(grain_seconds),
        "timespan": f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')}/{end.strftime('%Y-%m-%dT%H:%M:%SZ')}",
    }, quote_via=quote)
    return f"{resource_id}/providers/Microsoft.Insights/metrics?{query}"


def latest_value(body: Mapping[str, Any], aggregation: str = "Average") -> float | None:
    """The newest data point that has a value for the aggregation (Azure leaves the current grain empty at
    times); None when there is none."""
    key = aggregation[0].lower() + aggregation[1:]
    for metric in body.get("value") or []:
        for series in metric.get("timeseries") or []:
            for point in reversed(series.get("data") or []):
                if point.get(key) is not None:
                    return float(point[key])
    return None


def _timestamp(point: Mapping[str, Any]) -> datetime.datetime | None:
    return parse_rfc3339(point.get("timeStamp"))


def window_value(body: Mapping[str, Any], aggregation: str, since: datetime.datetime) -> float | None:
    """The metric over a time window, as Azure autoscale reads a metric trigger: the data points (one per time
    grain) that start within the window, each already aggregated over the instances with ``aggregation``, then
    aggregated over time the same way (Average: the mean of the points, Minimum / Maximum: the lowest / highest,
    Total and Count: the sum). Points without a value (no running instance, the current grain not reported yet)
    are left out; None when no point has one. A point that starts before ``since`` (ARM aligns the first point
    to the grain) is left out unless it is the only one."""
    key = aggregation[0].lower() + aggregation[1:]
    inside: list[float] = []
    earlier: list[float] = []
    for metric in body.get("value") or []:
        for series in metric.get("timeseries") or []:
            for point in series.get("data") or []:
                if point.get(key) is None:
                    continue
                at = _timestamp(point)
                (earlier if at is not None and at < since else inside).append(float(point[key]))
    values = inside or earlier[-1:]
    if not values:
        return None
    if aggregation == "Average":
        return sum(values) / len(values)
    if aggregation == "Minimum":
        return min(values)
    if aggregation == "Maximum":
        return max(values)
    return sum(values)
