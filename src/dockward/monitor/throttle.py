"""Rate limiting and de-duplication per (rule, container)."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

MAX_KEYS = 20000


@dataclass
class _State:
    tokens: float
    last: float
    last_text: str = ""
    last_text_at: float = -1e18
    suppressed: int = 0


class Throttle:
    """Token bucket (`rate` alerts/s, `burst`) and a window that drops repeats of the same text.

    `allow` returns (allowed, how many were suppressed since the last allowed alert), so the
    alert that gets through can say how many it stands for.
    """

    def __init__(self, rate: float = 0.0, burst: int = 0, dedup_window: float = 0.0) -> None:
        self.rate = rate
        self.burst = burst
        self.dedup_window = dedup_window
        self._keys: OrderedDict[tuple[str, str], _State] = OrderedDict()
        self.suppressed_total = 0

    @property
    def active(self) -> bool:
        return self.rate > 0 or self.dedup_window > 0

    def allow(self, rule: str, container: str, text: str, now: float) -> tuple[bool, int]:
        if not self.active:
            return True, 0
        key = (rule, container)
        st = self._keys.get(key)
        if st is None:
            st = _State(tokens=float(self.burst or 1), last=now)
            self._keys[key] = st
            if len(self._keys) > MAX_KEYS:
                self._keys.popitem(last=False)
        else:
            self._keys.move_to_end(key)
        if (
            self.dedup_window > 0
            and text == st.last_text
            and now - st.last_text_at < self.dedup_window
        ):
            st.suppressed += 1
            self.suppressed_total += 1
            return False, 0
        if self.rate > 0:
            st.tokens = min(float(self.burst or 1), st.tokens + (now - st.last) * self.rate)
            st.last = now
            if st.tokens < 1.0:
                st.suppressed += 1
                self.suppressed_total += 1
                return False, 0
            st.tokens -= 1.0
        st.last_text, st.last_text_at = text, now
        count, st.suppressed = st.suppressed, 0
        return True, count
