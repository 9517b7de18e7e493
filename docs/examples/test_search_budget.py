"""A dfs search with too small a budget (docs/model-checking.md runs this under pytest)."""

import concurrency
from concurrency import sync, thread


@concurrency.test(iterations=50)
def test_three_workers():
    total = sync.Mutex(0)

    def work():
        for _ in range(3):
            with total.lock() as guard:
                guard.value += 1

    with thread.scope() as scope:
        for _ in range(3):
            scope.spawn(work)
    with total.lock() as guard:
        assert guard.value == 9
