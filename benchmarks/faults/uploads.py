"""S3's at-least-once delivery, played on the fault run's stack: every S3 event ``on_upload`` is invoked with,
kept by key so the very same event can be delivered again."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus


@dataclass
class UploadEvents:
    """Every S3 event ``on_upload`` is invoked with, by key; invokes it again with the same event to
    play S3's at-least-once redelivery (``redeliver_now``: racing the first delivery)."""

    invoke_again: Callable[[dict[str, Any]], bool]
    immediate: set[str]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)
    redelivered: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, invoke: Callable[[Any], tuple[str, bool]]) -> Callable[[Any], tuple[str, bool]]:
        def tapped(event: Any) -> tuple[str, bool]:
            key = unquote_plus(event["Records"][0]["s3"]["object"]["key"])
            with self._lock:
                first = key not in self.events
                self.events.setdefault(key, event)
                self.seen[key] += 1
            if first and Path(key).stem in self.immediate:
                racer = threading.Thread(target=self.redeliver, args=(key,), daemon=True)
                with self._lock:
                    self.threads.append(racer)
                racer.start()
            return invoke(event)

        return tapped

    def redeliver(self, key: str) -> None:
        with self._lock:
            event = self.events.get(key)
        if event is None:
            self.errors.append(f"{key}: no event was seen to redeliver")
            return
        ok = self.invoke_again(event)
        with self._lock:
            self.redelivered[key] += 1
            if not ok:
                self.errors.append(f"{key}: the redelivered invoke failed")
