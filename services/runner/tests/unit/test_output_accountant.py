"""OutputAccountant: the byte cap over stdout + stderr, protocol line splitting, the stderr tail."""

from __future__ import annotations

import pytest
from backtest_core.contracts import Failure, FailureReason, SandboxError, SandboxProgress
from backtest_runner.sandbox.output import OutputAccountant

pytestmark = pytest.mark.unit


def _progress(fraction: float) -> bytes:
    return SandboxProgress(fraction=fraction, stage="proposals").model_dump_json().encode()


def test_a_line_split_across_chunks_is_parsed_once_complete() -> None:
    out = OutputAccountant(limit_bytes=10_000, stderr_tail_bytes=100)
    line = _progress(0.25) + b"\n"

    first = out.feed_stdout(line[:10])
    second = out.feed_stdout(line[10:] + _progress(0.5)[:5])

    assert first == []
    assert [p.fraction for p in second] == [0.25]
    assert out.total_bytes == len(line) + 5


def test_a_last_line_without_newline_is_parsed_by_finish() -> None:
    out = OutputAccountant(limit_bytes=10_000, stderr_tail_bytes=100)
    out.feed_stdout(_progress(0.75))

    assert [p.fraction for p in out.finish()] == [0.75]


def test_stdout_and_stderr_bytes_add_up_against_the_cap() -> None:
    out = OutputAccountant(limit_bytes=100, stderr_tail_bytes=1000)
    out.feed_stdout(b"a" * 60)
    assert not out.over_limit
    out.feed_stderr(b"e" * 40)
    assert not out.over_limit and out.total_bytes == 100

    out.feed_stderr(b"e")

    assert out.over_limit and out.total_bytes == 101


def test_nothing_is_parsed_after_the_cap_is_crossed() -> None:
    out = OutputAccountant(limit_bytes=50, stderr_tail_bytes=100)
    out.feed_stdout(b"x" * 49)

    progress = out.feed_stdout(b"\n" + _progress(0.5) + b"\n")

    assert progress == [] and out.over_limit
    assert out.finish() == []


def test_stderr_keeps_only_its_tail() -> None:
    out = OutputAccountant(limit_bytes=10_000, stderr_tail_bytes=8)
    out.feed_stderr(b"0123456789")
    out.feed_stderr(b"ab")

    assert out.stderr_tail == "456789ab"
    assert out.total_bytes == 12


def test_prints_are_noise_and_the_first_is_kept_as_a_sample() -> None:
    out = OutputAccountant(limit_bytes=10_000, stderr_tail_bytes=100)

    progress = out.feed_stdout(b'hello\n{"type": "nope"}\n' + _progress(0.1) + b"\n\n")

    assert [p.fraction for p in progress] == [0.1]
    assert (out.noise_lines, out.noise_sample) == (2, "hello")


def test_the_first_final_line_is_kept_and_later_protocol_lines_are_counted() -> None:
    out = OutputAccountant(limit_bytes=10_000, stderr_tail_bytes=100)
    error = SandboxError(failure=Failure(reason=FailureReason.STRATEGY_ERROR, message="boom"))

    lines = out.feed_stdout(error.model_dump_json().encode() + b"\n" + _progress(0.9) + b"\n")

    assert lines == [error]
    assert out.terminal == error
    assert out.lines_after_terminal == 1


def test_a_batch_counts_each_jobs_bytes_stderr_and_final_line_apart() -> None:
    out = OutputAccountant(limit_bytes=400, stderr_tail_bytes=100, jobs=3)
    first = SandboxError(task_id="a", failure=Failure(reason=FailureReason.NO_DATA, message="none"))
    second = SandboxError(task_id="b", failure=Failure(reason=FailureReason.STRATEGY_ERROR, message="x"))
    out.feed_stderr(b"job a")
    out.feed_stdout(b"hi\n" + _progress(0.5) + b"\n")

    lines = out.feed_stdout(first.model_dump_json().encode() + b"\n")

    assert lines == [first]
    assert (out.finished, out.terminal, out.total_bytes, out.stderr_tail, out.noise_lines) == (
        1,
        None,
        0,
        "",
        0,
    )
    out.feed_stderr(b"e" * 300)
    out.feed_stdout(second.model_dump_json().encode() + b"\n")  # over 400 bytes with job a's: not a cap
    assert (out.finished, out.over_limit) == (2, False)
    out.feed_stdout(b"z" * 401)
    assert out.over_limit  # job c alone crossed it


def test_the_last_final_line_of_a_batch_is_kept_and_later_lines_are_counted() -> None:
    out = OutputAccountant(limit_bytes=10_000, stderr_tail_bytes=100, jobs=2)
    ends = [SandboxError(task_id=t, failure=Failure(reason=FailureReason.NO_DATA, message=t)) for t in "ab"]

    lines = out.feed_stdout(b"".join(e.model_dump_json().encode() + b"\n" for e in ends) + _progress(0.1))

    assert lines == ends and out.finish() == []
    assert (out.finished, out.terminal, out.lines_after_terminal) == (2, ends[1], 1)


def test_a_progress_line_with_an_oversized_or_markup_stage_is_noise_not_progress() -> None:
    out = OutputAccountant(limit_bytes=4_000_000, stderr_tail_bytes=100)
    huge = b'{"type":"progress","fraction":0.5,"stage":"' + b"<script>" * 131_072 + b'"}\n'  # 1 MiB stage
    markup = b'{"type":"progress","fraction":0.5,"stage":"<b>x</b>"}\n'

    passed = out.feed_stdout(huge + markup + _progress(0.75) + b"\n")

    assert [(p.fraction, p.stage) for p in passed] == [(0.75, "proposals")]
    assert out.noise_lines == 2
    assert out.noise_sample is not None and len(out.noise_sample) == 500  # NOISE_SAMPLE_CHARS
