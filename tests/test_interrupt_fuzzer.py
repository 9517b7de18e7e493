"""KeyboardInterrupt delivered at random moments into every primitive leaves it consistent.

The bounded CI run of the fuzzer in `interrupt_fuzz.py`: a fixed seed and a few
hundred interrupts per scenario (`stress/fuzz_interrupts.py` runs the long
version). Real threads only: the model backends run no OS threads to interrupt.
The guarantee is the native core's: the pure-Python fallback's safety against
asynchronous exceptions is documented as best-effort, so it is not fuzzed here.
"""

from __future__ import annotations

import pytest
from interrupt_fuzz import SCENARIOS
from sync_helpers import real_threads_only

from concurrency.backends.native import CORE

SHOTS = 300
SEED = 20261201


@real_threads_only
@pytest.mark.skipif(CORE is None, reason="the pure-Python fallback is only best-effort safe "
                    "against asynchronous exceptions (native core not compiled, or "
                    "CONCURRENCY_PURE_PYTHON=1)")
@pytest.mark.timeout(300)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_interrupts_leave_every_primitive_consistent(scenario: str) -> None:
    outcome = SCENARIOS[scenario](SHOTS, SEED)
    assert outcome.shots == SHOTS, f"only {outcome.shots} of {SHOTS} interrupts were delivered"
    assert outcome.violations == [], outcome.violations
