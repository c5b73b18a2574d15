"""The collector contract. One module per metric type; ``build_collectors`` makes one of each."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

from perfwatch.contract.documents import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Collector"]


class Collector(ABC):
    """Produces one metric type's JSON document per call.

    ``collect`` is synchronous and runs in a worker thread (psutil blocks); it never sleeps
    (no ``interval>0`` psutil calls). Collectors keep state between calls (previous counters
    for rates, per-process CPU state), so one instance lives for the sampler's lifetime.
    """

    metric_type: ClassVar[str]
    # config_entries key holding this collector's interval in seconds (its default is the
    # catalogue's: contract/runtime_config.py).
    interval_key: ClassVar[str]

    def configure(self, values: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Apply config_entries values (called at start and on every refresh, ~1 s).

        For settings other than the interval, e.g. the processes' top-N or how often the
        filesystem usage inside the disk document is refreshed.
        """

    @abstractmethod
    def collect(self) -> dict[str, Any]:
        """The document for this instant; always carries ``schema_version``."""
