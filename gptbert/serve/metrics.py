"""The server's Prometheus metrics (``/metrics``), in a registry of their own per app."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Prometheus collectors in a registry of their own (one per app)."""

    content_type = CONTENT_TYPE_LATEST
    """Media type of :meth:`exposition`."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("gptbert_requests", "HTTP requests by route and status code", ["route", "status"],
                                registry=r)
        self.latency = Histogram(
            "gptbert_request_duration_seconds", "Time from request to the end of the response", ["route"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
        )
        self.in_flight = Gauge("gptbert_requests_in_flight", "HTTP requests being answered", registry=r)
        self.batch_size = Histogram(
            "gptbert_batch_size", "Inputs per model call (dynamic batching)", ["task"], registry=r,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.batch_seconds = Histogram(
            "gptbert_batch_duration_seconds", "Time of one model call", ["task"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
        )
        self.queue_depth = Gauge("gptbert_queue_depth", "Requests waiting for the model", registry=r)
        self.input_tokens = Counter("gptbert_input_tokens", "Input tokens of accepted requests", ["task"], registry=r)
        self.generated_tokens = Counter("gptbert_generated_tokens", "Tokens generated (outputs re-tokenized)",
                                        registry=r)
        self.ready = Gauge("gptbert_model_ready", "1 when the model is loaded and requests are accepted", registry=r)

    def on_batch(self, task: str, size: int, seconds: float) -> None:
        self.batch_size.labels(task=task).observe(size)
        self.batch_seconds.labels(task=task).observe(seconds)

    def exposition(self) -> bytes:
        """Every collector in the Prometheus text format (of type :attr:`content_type`)."""
        return generate_latest(self.registry)
