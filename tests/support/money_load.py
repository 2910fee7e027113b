"""Load on a gateway while Redis fails over, and the money checks after it
(tests/production/test_redis_sentinel.py, test_redis_cluster.py): every answered request
recorded once at the cost its client was told, no account over its credit, and the live
balance in Redis equal to the database's once the changes made meanwhile are mirrored."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx

from billing.models import CreditAccount, RequestLog
from billing.redis_credit import from_pico

# A request of $0.00001, its hold kept small by max_tokens.
CHAT = {"model": "test/echo", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def ask(url: str, key: str, http: httpx.Client | None = None) -> httpx.Response:
    return (http or httpx).post(  # type: ignore[attr-defined]
        f"{url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json=CHAT,
        timeout=30,
    )


@dataclass
class Load:
    """Clients asking in a loop, `clients[i]` the account index of client i."""

    url: str
    accounts: Sequence[Any]
    clients: Sequence[int]
    answered: list[tuple[int, str, Decimal]] = field(default_factory=list)  # (account, id, cost)
    refused: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _client(self, which: int) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                answer = ask(self.url, self.accounts[which].key, http)
                with self._lock:
                    if answer.status_code == 200:
                        cost = Decimal(answer.headers["x-gatewayz-cost"])
                        self.answered.append((which, answer.headers["x-request-id"], cost))
                    else:
                        assert answer.status_code in {402, 429, 503}, answer.text
                        self.refused.append(answer.status_code)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client, args=(i,)) for i in self.clients]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def _settled(request_ids: set[str], timeout: float = 60) -> dict[str, RequestLog]:
    deadline = time.monotonic() + timeout
    while True:
        found = {r.request_id: r for r in RequestLog.objects.filter(request_id__in=request_ids)}
        if len(found) == len(request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def assert_money_kept(
    load: Load, credits: Sequence[Decimal], live_balance: Callable[[int], bytes | None]
) -> None:
    """The checks after the load; `live_balance(user_id)` reads Redis' `avail` for a user."""
    told = {request_id: cost for _, request_id, cost in load.answered}
    assert len(told) == len(load.answered)
    logged = _settled(set(told))
    missing = set(told) - set(logged)
    assert not missing, f"{len(missing)} answered requests never recorded"
    for request_id, row in logged.items():
        assert row.status == 200 and row.cost == told[request_id], request_id

    for which, account in enumerate(load.accounts):
        spent = sum((cost for w, _, cost in load.answered if w == which), Decimal(0))
        row = CreditAccount.objects.get(user=account.user)
        # The database's balance is the credit less what was recorded, and never below 0.
        assert row.balance == credits[which] - spent
        assert row.balance >= 0, f"account {which} overspent by {-row.balance}"
        # Redis' agrees once the changes made meanwhile are mirrored (the gateway does it
        # as it finds Redis again).
        deadline = time.monotonic() + 30
        while True:
            live = live_balance(account.user.pk)
            if live is not None and from_pico(live) == row.balance:
                break
            assert time.monotonic() < deadline, (which, live, row.balance)
            time.sleep(0.5)
