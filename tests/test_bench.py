"""bench/: the capacity search of `bench cameras` and the figures section writer (no benchmark runs here)."""

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
