"""Run logging: one ``metrics.jsonl`` line per record plus TensorBoard scalars."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter


class RunLogger:
    """Append-only metrics log (``metrics.jsonl``) mirrored to TensorBoard (``tb/``).

    On resume, ``start_step`` drops TensorBoard events written after the checkpoint
    (they will be re-done) and the JSONL log is truncated to match.
    """

    def __init__(self, out_dir: str | Path, *, start_step: int = 0, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self.writer: SummaryWriter | None = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_after(start_step)
        self.writer = SummaryWriter(str(Path(out_dir) / "tb"), purge_step=start_step or None)

    def _truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    kept.append(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def log(self, step: int, phase: str, values: dict[str, Any]) -> None:
        """Record ``values`` (numbers) for ``phase`` (``train``, ``val``...) at ``step``."""
        if not self.enabled:
            return
        numbers = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        record = {"step": step, "phase": phase, "time": round(time.time(), 3), **numbers}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        for key, value in numbers.items():
            if math.isfinite(value) and self.writer is not None:
                self.writer.add_scalar(f"{phase}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
