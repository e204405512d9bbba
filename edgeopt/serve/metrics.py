"""``GET /metrics`` in the Prometheus text format (version 0.0.4), written by hand: a handful of counters, two
histograms and a few gauges do not need a client library.

Families: ``edgeopt_requests_total`` and ``edgeopt_request_seconds`` (by route template, so that job ids do not
make new series), ``edgeopt_method_runs_total`` and ``edgeopt_method_seconds`` (every finished method run, by
problem, method and status; its ``wall_s``), ``edgeopt_cancelled_total`` (method runs dropped, by reason),
``edgeopt_jobs`` (the store's jobs by status) and the gauges ``edgeopt_in_flight``, ``edgeopt_queue_limit``,
``edgeopt_workers``.
"""
from __future__ import annotations

import math
import time
from collections import Counter

REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
METHOD_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 3600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")


def _labels(names: tuple[str, ...], values: tuple, extra: str = "") -> str:
    def escaped(v) -> str:
        return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    parts = [f'{n}="{escaped(v)}"' for n, v in zip(names, values)] + ([extra] if extra else [])
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(x: float) -> str:
    return "+Inf" if x == math.inf else repr(float(x)) if isinstance(x, float) else str(x)


class Histogram:
    def __init__(self, labels: tuple[str, ...], buckets: tuple[float, ...]):
        self.labels, self.buckets = labels, buckets
        self.series: dict[tuple, list] = {}  # label values -> [count per bucket..., sum, count]

    def observe(self, values: tuple, x: float) -> None:
        s = self.series.setdefault(values, [0] * len(self.buckets) + [0.0, 0])
        for k, edge in enumerate(self.buckets):
            if x <= edge:
                s[k] += 1
        s[-2] += x
        s[-1] += 1

    def lines(self, name: str) -> list[str]:
        out = []
        for values, s in sorted(self.series.items()):
            for edge, n in zip((*self.buckets, math.inf), (*s[:-2], s[-1])):
                le = 'le="' + _number(edge) + '"'
                out.append(f"{name}_bucket{_labels(self.labels, values, le)} {n}")
            out.append(f"{name}_sum{_labels(self.labels, values)} {_number(s[-2])}")
            out.append(f"{name}_count{_labels(self.labels, values)} {s[-1]}")
        return out


class Metrics:
    def __init__(self):
        self.requests: Counter = Counter()  # (route, method, status)
        self.request_seconds = Histogram(("route",), REQUEST_BUCKETS)
        self.runs: Counter = Counter()  # (problem, method, status)
        self.run_seconds = Histogram(("problem", "method"), METHOD_BUCKETS)
        self.cancelled: Counter = Counter()  # reason

    def finished(self, row: dict) -> None:
        """A method run's row came back."""
        self.runs[row["problem"], row["method"], row["status"]] += 1
        self.run_seconds.observe((row["problem"], row["method"]), row["wall_s"])

    def text(self, jobs: dict[str, int], gauges: dict[str, tuple[str, float]]) -> str:
        out = []

        def family(name: str, kind: str, text: str) -> None:
            out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])

        family("edgeopt_requests_total", "counter", "HTTP requests answered, by route template, method and status")
        out += [f"edgeopt_requests_total{_labels(('route', 'method', 'status'), k)} {n}"
                for k, n in sorted(self.requests.items())]
        family("edgeopt_request_seconds", "histogram", "time to answer a request, by route template")
        out += self.request_seconds.lines("edgeopt_request_seconds")
        family("edgeopt_method_runs_total", "counter", "method runs finished, by problem, method and status")
        out += [f"edgeopt_method_runs_total{_labels(('problem', 'method', 'status'), k)} {n}"
                for k, n in sorted(self.runs.items())]
        family("edgeopt_method_seconds", "histogram", "a method run's wall_s (its whole call), by problem and method")
        out += self.run_seconds.lines("edgeopt_method_seconds")
        family("edgeopt_cancelled_total", "counter", "method runs dropped before they finished, by reason")
        out += [f"edgeopt_cancelled_total{_labels(('reason',), (k,))} {n}" for k, n in sorted(self.cancelled.items())]
        family("edgeopt_jobs", "gauge", "jobs in the store, by status")
        out += [f"edgeopt_jobs{_labels(('status',), (k,))} {n}" for k, n in sorted(jobs.items())]
        for name, (text, value) in gauges.items():
            family(name, "gauge", text)
            out.append(f"{name} {_number(value)}")
        return "\n".join(out) + "\n"


class RequestMetrics:
    """ASGI middleware: every HTTP answer counted and timed under its route's template (``/jobs/{id}``);
    a path no route matches counts as ``unmatched``, an unusual method as ``other`` (no label a client can
    multiply)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [499]  # 499: the client went away before an answer

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"] if scope["method"] in METHODS else "other"  # a client's word: bounded
            self.metrics.requests[route, method, str(status[0])] += 1
            self.metrics.request_seconds.observe((route,), time.perf_counter() - start)
