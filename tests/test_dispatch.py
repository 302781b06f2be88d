"""Capture's dealing to pose workers: credit, dead workers named with the frames they held, pings.

Real ROUTER and DEALER sockets over inproc; the stages themselves are covered end to end in
test_determinism.py, test_live_drops.py and test_faults.py.
"""
from __future__ import annotations

import time

import pytest
import zmq

from engine.framework import transport
from engine.framework.dispatch import EngineLink, Sent, WorkerPool, is_control, unpack_control


@pytest.fixture()
def router():
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    endpoint = f"inproc://dispatch-{time.monotonic_ns()}"
    sock.bind(endpoint)
    dealers: list[zmq.Socket] = []

    def dealer() -> zmq.Socket:
        d = ctx.socket(zmq.DEALER)
        d.connect(endpoint)
        dealers.append(d)
        return d

    yield sock, dealer
    for d in dealers:
        d.close(linger=0)
    sock.close(linger=0)


def settle(pool: WorkerPool, now: float, until=lambda lost: True) -> list[Sent]:
    """Receive reports until `until(lost)` holds (inproc delivery is asynchronous)."""
    lost: list[Sent] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pool.sock.poll(20)
        lost += pool.receive(now)
        if until(lost):
            break
    return lost


def send_frame(pool: WorkerPool, seq: int) -> None:
    worker = pool.freest()
    assert worker is not None, f"no worker with credit for frame {seq}"
    assert pool.send(worker, transport.pack({"stream": "s", "seq": seq, "t_capture_ns": 0}), Sent("s", seq, seq - 1)) is None


def test_a_worker_takes_only_what_its_credit_allows(router) -> None:
    sock, dealer = router
    pool = WorkerPool(sock)
    link = EngineLink(dealer(), hwm=2, worker=1, remote=False)
    link.report(0.0, force=True)
    settle(pool, 0.0, lambda _: bool(pool.workers))
    send_frame(pool, 0)
    send_frame(pool, 1)
    assert pool.freest() is None  # two frames held: no credit left
    link.finished_one(0.1)
    settle(pool, 0.1, lambda _: pool.freest() is not None)
    (worker,) = pool.workers.values()
    assert [s.seq for s in worker.held] == [1] and worker.credit == 1
    assert pool.counts() == {"local": 1, "remote": 0}


def test_a_restarted_local_worker_names_the_frames_the_old_one_held(router) -> None:
    sock, dealer = router
    pool = WorkerPool(sock)
    EngineLink(dealer(), hwm=3, worker=1, remote=False).report(0.0, force=True)
    settle(pool, 0.0, lambda _: bool(pool.workers))
    for seq in range(3):
        send_frame(pool, seq)
    EngineLink(dealer(), hwm=3, worker=1, remote=False).report(0.0, force=True)  # the supervisor's restart
    lost = settle(pool, 0.0, lambda lost: bool(lost))
    assert [s.seq for s in lost] == [0, 1, 2]
    assert len(pool.workers) == 1 and pool.freest() is not None


def test_a_silent_worker_is_dropped_with_what_it_held(router) -> None:
    sock, dealer = router
    pool = WorkerPool(sock, silent_s=2.0)
    EngineLink(dealer(), hwm=2, worker=0, remote=True).report(0.0, force=True)
    settle(pool, 0.0, lambda _: bool(pool.workers))
    send_frame(pool, 7)
    assert pool.counts() == {"local": 0, "remote": 1}
    assert [s.seq for s in pool.receive(1.0)] == []
    assert [s.seq for s in pool.receive(2.5)] == [7]
    assert pool.workers == {}


def test_a_malformed_report_is_counted_and_dropped(router) -> None:
    sock, dealer = router
    pool = WorkerPool(sock)
    bad = dealer()
    bad.send_multipart([b"ctl", b"\x93not a map"])
    bad.send_multipart([b"ctl", b"\x81\xa4done\xa3yes"])  # {"done": "yes"}
    bad.send_multipart([b"hello"])
    settle(pool, 0.0, lambda _: pool.malformed == 3)
    assert pool.malformed == 3 and pool.workers == {}


def test_a_worker_hears_pings_and_the_goodbye(router) -> None:
    sock, dealer = router
    pool = WorkerPool(sock)
    d = dealer()
    link = EngineLink(d, hwm=1, worker=0, remote=True)
    link.report(0.0, force=True)
    settle(pool, 0.0, lambda _: bool(pool.workers))
    pool.receive(10.0)  # due: pings every worker
    pool.broadcast({"bye": True})
    heard = []
    while d.poll(2000):
        parts = d.recv_multipart()
        assert is_control(parts)
        heard.append(link.heard(unpack_control(parts), 10.0))
        if link.ended:
            break
    assert heard == ["connected to the engine", "the engine ended"]
    assert not link.silent(12.0) and link.silent(14.0)


def test_a_worker_whose_connection_is_gone_is_dropped_at_the_next_ping(router) -> None:
    sock, dealer = router
    pool = WorkerPool(sock, silent_s=1e9)  # silence alone will never drop it here
    d = dealer()
    EngineLink(d, hwm=2, worker=0, remote=True).report(0.0, force=True)
    settle(pool, 0.0, lambda _: bool(pool.workers))
    send_frame(pool, 3)
    d.close(linger=0)
    lost: list[Sent] = []
    deadline = time.monotonic() + 5
    now = 1.0
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
        now += 1.0  # a ping is due at every call, the worker's last report is only seconds old
        lost = pool.receive(now)
    assert [s.seq for s in lost] == [3] and pool.workers == {}
