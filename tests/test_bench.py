"""bench/: the capacity search of `bench cameras` and the figures section writer (no benchmark runs here)."""

from datetime import datetime, timezone

import pytest

from bench import report
from bench.cameras import capacity_search


def search(limit, guess, start=16, most=64):
    tried = []

    def keeps_up(n):
        tried.append(n)
        return n <= limit

    capacity, failed = capacity_search(start, guess, most, keeps_up)
    return capacity, failed, tried


def test_a_good_guess_takes_two_steps_a_pass_and_the_failure_above_it():
    assert search(limit=35, guess=32) == (32, {40}, [32, 40])


def test_a_guess_too_high_steps_down_until_a_step_keeps_up():
    assert search(limit=27, guess=40) == (24, {40, 32}, [40, 32, 24])


def test_a_guess_too_low_steps_up_and_stops_after_three_steps_without_a_failure():
    capacity, failed, tried = search(limit=60, guess=24)
    assert (capacity, failed, tried) == (40, set(), [24, 32, 40])


def test_when_nothing_above_the_main_step_keeps_up_the_capacity_is_the_main_step():
    assert search(limit=20, guess=24) == (16, {24}, [24])


def test_the_search_never_goes_past_the_cameras_there_are():
    assert search(limit=100, guess=80, most=64) == (64, set(), [64])


def test_a_section_is_replaced_in_place_and_other_sections_are_kept(tmp_path, monkeypatch):
    doc = tmp_path / "BENCHMARKS.md"
    monkeypatch.setattr(report, "DOC", doc)
    report.write_section("a", "First", "one", "python -m bench a")
    report.write_section("b", "Second", "two", "python -m bench b")
    report.write_section("a", "First", "three", "python -m bench a --quick")
    text = doc.read_text()
    assert text.count("<!-- a -->") == 1 and "three" in text and "one" not in text
    assert "two" in text and text.index("<!-- a -->") < text.index("<!-- b -->")
    assert "- Command: `python -m bench a --quick`" in text and "- Machine: " in text


@pytest.mark.parametrize("argv", [["nonsense"], ["vad", "nonsense"]])
def test_an_unknown_benchmark_is_refused_by_name(argv, capsys):
    from bench.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "nonsense" in capsys.readouterr().err


def test_push_latencies_count_each_events_first_message_and_its_close_within_the_window():
    from bench.cameras import event_push_latencies

    def event(eid, camera, started, ended=None, description=""):
        return {"type": "event", "event": {"id": eid, "camera": camera, "started_at": started,
                                           "ended_at": ended, "description": description}}

    t0 = 1_800_000_000.0

    def iso(t):
        return datetime.fromtimestamp(t, timezone.utc).isoformat()

    messages = [
        (t0 + 0.6, event("a", 1, iso(t0))),  # first push 0.6 s
        (t0 + 0.9, event("a", 1, iso(t0))),  # a later copy: not the first push
        (t0 + 5.5, event("a", 1, iso(t0), ended=iso(t0 + 5), description="A man runs.")),  # closed 0.5 s
        (t0 + 2.3, event("b", 2, iso(t0 + 2))),  # 0.3 s
        (t0 + 1.0, event("c", 9, iso(t0))),  # another camera
        (t0 - 5.0, event("d", 1, iso(t0 - 6))),  # before the window
        (t0 + 1.0, {"type": "subscribed", "camera": 1}),
    ]
    pushed = event_push_latencies(messages, [1, 2], since=t0, until=t0 + 10)
    assert sorted(round(v, 3) for v in pushed["first"]) == [0.3, 0.6]
    assert [round(v, 3) for v in pushed["closed"]] == [0.5] and pushed["described"] == 1
    assert event_push_latencies(messages, [1, 2], since=t0 + 1, until=t0 + 10)["first"] == [pytest.approx(0.3)]


def test_description_latencies_time_each_events_first_described_message_and_count_the_undescribed_by_reason():
    from bench.describe import description_latencies

    t0 = 1_800_000_000.0

    def event(eid, started, description="", vlm_error=None, camera=1):
        details = {"detector_details": {"vlm_error": vlm_error}} if vlm_error else {"detector_details": {}}
        return {"type": "event", "event": {"id": eid, "camera": camera, "description": description,
                                           "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
                                           "details": details}}

    messages = [
        (t0 + 0.4, event("a", t0)),
        (t0 + 1.5, event("a", t0, description="A man falls.")),  # described 1.5 s after it opened
        (t0 + 3.0, event("a", t0, description="A man lies on the ground.")),  # a later one: not counted
        (t0 + 2.2, event("b", t0 + 2)),
        (t0 + 4.0, event("b", t0 + 2, vlm_error="budget")),  # no description: its reason
        (t0 + 5.0, event("c", t0 + 3, vlm_error="timeout: the VLM model server did not answer within 20 s")),
        (t0 + 5.5, event("d", t0 + 4)),  # nothing recorded yet
        (t0 + 6.0, event("e", t0 + 4, description="Someone runs.", camera=9)),  # another camera
        (t0 + 1.0, event("f", t0 - 5, description="Before the window.")),
        (t0 + 1.0, {"type": "subscribed", "camera": 1}),
    ]
    got = description_latencies(messages, [1, 2], since=t0, until=t0 + 10)
    assert got["events"] == 4 and [round(v, 3) for v in got["described"]] == [1.5]
    assert got["missing"] == {"budget": 1, "timeout": 1, "none recorded": 1}
