"""A bank account whose `withdraw` checks the balance and debits it in two steps.

Each step holds the lock, so there is no data race, yet two withdrawals can
both pass the check before either debits: the account is overdrawn. This is
an atomicity violation, the most common bug that locks alone do not prevent.
"""

from __future__ import annotations

from concurrency import sync, thread


class Account:
    def __init__(self, balance: int) -> None:
        self.balance = sync.Mutex(balance, name="balance")

    def withdraw_buggy(self, amount: int) -> bool:
        with self.balance.lock() as guard:
            enough = guard.value >= amount
        if not enough:
            return False
        with self.balance.lock() as guard:  # another withdrawal may have run in between
            guard.value -= amount
        return True

    def withdraw(self, amount: int) -> bool:
        with self.balance.lock() as guard:  # check and debit under one hold
            if guard.value < amount:
                return False
            guard.value -= amount
            return True


def _two_withdrawals(withdraw_name: str) -> None:
    account = Account(100)
    withdraw = getattr(account, withdraw_name)
    with thread.scope() as scope:
        scope.spawn(withdraw, 80, name="alice")
        scope.spawn(withdraw, 50, name="bob")
    with account.balance.lock() as guard:
        assert guard.value >= 0, f"account overdrawn: balance is {guard.value}"


def overdraft() -> None:
    """Two withdrawals of 80 and 50 from 100 must never overdraw (fails: a real bug)."""
    _two_withdrawals("withdraw_buggy")


def overdraft_fixed() -> None:
    """The same with check and debit in one critical section (passes every schedule)."""
    _two_withdrawals("withdraw")
