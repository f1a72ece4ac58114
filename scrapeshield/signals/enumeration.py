"""ID enumeration: reading personal records in id order.

People jump between profiles; a scraper walking ``/api/v1/users/1..N`` steps by a
small constant. The run length of small forward steps grows the signal. A walk at a
larger constant stride (every 97th id, to look random to a sequential check) repeats
the same step: a run of equal steps is the strided signal.
"""

from __future__ import annotations

from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

MAX_STEP: Final = 3  # steps of 1..3 ids count as sequential (strided walks included)
MIN_STRIDES: Final = 5  # equal larger steps in a row
MIN_RUN: Final = 4  # a run shorter than this says nothing
FULL_RUN: Final = 12  # the signal reaches its full weight at this run length


class EnumerationDetector(DetectorBase):
    name = "enumeration"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._weight = policy.weights["enumeration.sequential"]
        self._strided = policy.weights["enumeration.strided"]

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        record = ctx.record
        if record:
            number_text = record[record.find(":") + 1 :]
            if number_text.isascii() and number_text.isdigit() and len(number_text) < 19:
                number = int(number_text)
                step = number - memory.last_number
                if memory.last_number >= 0 and 0 < abs(step) <= MAX_STEP:
                    memory.sequential_run += 1
                elif step != 0:
                    memory.sequential_run = 0
                if step != 0 and memory.last_number >= 0:
                    v = memory.values
                    v[28] = v[28] + 1 if step == v[27] else 0.0  # stride_run, last_step
                    v[27] = float(step)
                memory.last_number = number
                if memory.stride_run >= MIN_STRIDES and abs(memory.last_step) > MAX_STEP:
                    out.append(Signal(
                        "enumeration.strided", self._strided,
                        f"read {memory.stride_run + 1} records {memory.last_step} ids apart",
                    ))
        run = memory.sequential_run
        if run >= MIN_RUN:
            share = min(1.0, run / FULL_RUN)
            out.append(
                Signal(
                    "enumeration.sequential",
                    round(self._weight * share, 1),
                    f"read {run + 1} records in sequential id order (last {memory.last_number})",
                )
            )
