from __future__ import annotations

from engine.classify.reorder import ReorderBuffer


def released(buffer: ReorderBuffer, seqs: list[int], now: float = 0.0) -> list[int]:
    out = []
    for s in seqs:
        out += [seq for seq, _ in buffer.push(s, f"item{s}", now)]
    return out


def test_out_of_order_arrivals_come_out_in_order() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    assert released(buffer, [1, 0, 3, 2, 5, 4]) == [0, 1, 2, 3, 4, 5]
    assert buffer.lost == 0 and len(buffer) == 0


def test_missing_frame_is_skipped_after_the_timeout_and_counted() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer(gap_timeout_s=1.0)
    assert released(buffer, [0, 2, 3], now=10.0) == [0]
    assert buffer.poll(10.5) == []
    assert [s for s, _ in buffer.poll(11.0)] == [2, 3]
    assert buffer.lost == 1
    assert released(buffer, [1]) == []  # too late now: dropped, counted
    assert buffer.late == 1


def test_full_buffer_skips_ahead() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer(capacity=3)
    assert released(buffer, [0, 2, 3, 4]) == [0]
    assert released(buffer, [5]) == [2, 3, 4, 5]
    assert buffer.lost == 1


def test_restarted_buffer_starts_at_the_first_frame_it_sees_after_the_timeout() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer(gap_timeout_s=0.5)
    assert released(buffer, [41, 40], now=1.0) == []
    assert [s for s, _ in buffer.poll(1.5)] == [40, 41]
    assert buffer.lost == 0
