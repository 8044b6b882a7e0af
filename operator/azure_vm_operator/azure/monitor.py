"""Azure Monitor's metrics API for one resource (e.g. a scale set's "Percentage CPU"): the request and the reading
of its answer. Pure."""

from __future__ import annotations

import datetime
from typing import Any, Mapping
from urllib.parse import quote, urlencode

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
