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


def test_frames_dropped_by_a_live_capture_are_never_waited_for() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer(gap_timeout_s=1.0)
    # capture sent 0, 3 and 7 (it dropped the rest): each names the one sent before it
    assert [s for s, _ in buffer.push(3, "b", 0.0, prev=0, dropped=2)] == []
    assert [s for s, _ in buffer.push(0, "a", 0.0, prev=-1)] == [0, 3]
    assert [s for s, _ in buffer.push(7, "c", 0.0, prev=3, dropped=5)] == [7]
    assert buffer.poll(100.0) == [] and buffer.lost == 0 and buffer.late == 0


def test_frames_announced_lost_are_counted_once_without_waiting() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer(gap_timeout_s=60.0)
    assert released(buffer, [0, 3]) == [0]
    assert [s for s, _ in buffer.mark_lost(2, 1, 0.0)] == []
    assert [s for s, _ in buffer.mark_lost(1, 0, 0.0)] == [3]  # 1 and 2 counted, 3 released at once
    assert buffer.lost == 2
    assert buffer.mark_lost(1, 0, 0.0) == [] and buffer.lost == 2  # a second notice counts nothing
    assert released(buffer, [2]) == [] and buffer.late == 1  # the frame itself, after all: late, not lost twice


def test_a_notice_for_a_frame_that_arrived_counts_nothing() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    assert released(buffer, [0, 2]) == [0]
    assert buffer.mark_lost(2, 1, 0.0) == []  # 2 is here: the notice was wrong about it
    assert buffer.lost == 0 and len(buffer) == 1


def test_a_timeout_counts_only_frames_that_were_not_dropped_on_purpose() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer(gap_timeout_s=1.0)
    assert [s for s, _ in buffer.push(0, "a", 0.0, prev=-1, dropped=0)] == [0]
    # frames 1-9 are gone: the capture's counter says it dropped 6 of them, so 3 were lost
    assert buffer.push(10, "b", 0.0, prev=8, dropped=6) == []
    assert [s for s, _ in buffer.poll(1.0)] == [10]
    assert buffer.lost == 3
