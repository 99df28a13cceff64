"""Schedule files (nemesis/schedule_file.py): what parses, and every bad input as one line
naming the file and the line of the fault."""

from __future__ import annotations

from pathlib import Path

import pytest

from tobtest.nemesis.schedule_file import (
    Fault,
    Remember,
    Repeat,
    ScheduleError,
    Sleep,
    Wait,
    load_executed,
    load_schedule,
    parse_schedule,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_flip_example_parses_into_its_steps() -> None:
    schedule = load_schedule(REPO / "examples" / "flip.yaml", nodes=3)
    assert schedule.name == "flip" and schedule.loop is True
    kinds = [type(s).__name__ for s in schedule.steps]
    assert kinds == ["Sleep", "Fault", "Wait", "Sleep", "Remember", "Wait", "Fault", "Fault",
                     "Fault", "Sleep", "Fault"]  # fmt: skip
    isolate = schedule.steps[1]
    assert isolate == Fault("partition", {"isolate": "leader"}, isolate.line, "old")
    wait = schedule.steps[2]
    assert isinstance(wait, Wait) and wait.replaced == "$old" and wait.bind == "new"
    remember = schedule.steps[4]
    assert isinstance(remember, Remember)
    assert remember.target == {"pick": "half", "except": ["$old", "$new"]}
    assert schedule.nemeses() == ["partition", "kill"]


def test_every_form_of_step_and_target() -> None:
    text = """\
name: all-forms
loop: false
steps:
  - sleep_s: [0.5, 1.5]
  - do: partition
    sides: [[n1, n2], n3]
  - do: partition
    from: leader
    to: followers
  - do: partition
    grudge: {n1: [n2, n3]}
  - do: pause
    nodes: {pick: one, from: followers}
    as: frozen
  - wait: answers
    nodes: $frozen
    timeout_s: 0.5
    on_timeout: skip
  - do: resume
    nodes: $frozen
  - do: clock
    nodes: minority
    op: skew
    rate: 2
  - do: clock-reset
  - do: link
    faults: [{src: leader, dst: all, delay_ms: 50, loss: 0.1}]
  - do: link-clear
  - repeat: {times: 2, every_s: 1}
    steps:
      - do: kill
        nodes: majority
      - do: restart
        nodes: all
  - wait: leader
    timeout_s: 2
    as: boss
  - do: heal
"""
    schedule = parse_schedule(text, "forms.yaml", nodes=3)
    steps = schedule.steps
    assert schedule.loop is False and schedule.name == "all-forms"
    assert steps[0] == Sleep((0.5, 1.5), 4)
    assert isinstance(steps[5], Wait) and steps[5].on_timeout == "skip"
    assert isinstance(steps[7], Fault) and steps[7].args == {
        "nodes": "minority", "op": "skew", "rate": 2.0
    }  # fmt: skip
    assert steps[9].args["faults"] == [  # type: ignore[union-attr]
        {"src": "leader", "dst": "all", "delay_ms": 50, "loss": 0.1}
    ]
    repeat = steps[11]
    assert isinstance(repeat, Repeat) and repeat.times == 2 and repeat.every_s == 1.0
    assert [s.kind for s in repeat.steps] == ["kill", "restart"]  # type: ignore[union-attr]
    assert schedule.nemeses() == ["partition", "pause", "clock", "link", "kill"]


def test_a_bare_list_is_a_schedule_that_repeats() -> None:
    schedule = parse_schedule("- do: kill\n  nodes: n1\n- sleep_s: 2\n", "list.yaml")
    assert schedule.loop is True and len(schedule.steps) == 2


BAD = [
    # (text, line, words the message must hold)
    ("steps:\n  - sleep_s: 1\n  - do: explode\n", 3, "unknown do 'explode'"),
    ("steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: leeder\n", 4, "unknown target 'leeder'"),
    ("steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: n4\n", 4, "unknown target 'n4'"),
    ("steps:\n  - sleep_s: 1\n  - do: kill\n", 3, "missing argument 'nodes'"),
    (
        "steps:\n  - sleep_s: 1\n  - do: clock\n    nodes: all\n    op: skew\n",
        3,
        "missing argument 'rate'",
    ),
    ("steps:\n  - sleep_s: fast\n", 2, "sleep_s: expected a number"),
    ("steps:\n  - sleep_s: [3, 1]\n", 2, "lo > hi"),
    ("steps:\n  - sleep_s: 1\n  - wait: leader\n", 3, "missing argument 'timeout_s'"),
    ("steps:\n  - sleep_s: 1\n  - wait: lunch\n    timeout_s: 1\n", 3, "unknown wait 'lunch'"),
    (
        "steps:\n  - sleep_s: 1\n  - wait: leader\n    timeout_s: 1\n    on_timeout: cry\n",
        5,
        "on_timeout",
    ),
    ("steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: $victims\n", 4, "$victims is not bound"),
    (
        "steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: n1\n    speed: 3\n",
        5,
        "unknown argument 'speed'",
    ),
    ("steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: 7\n", 4, "got int"),
    ("steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: {pick: lots}\n", 4, "pick: expected"),
    ("steps:\n  - sleep_s: 1\n  - do: partition\n", 3, "give one of grudge"),
    ("steps:\n  - sleep_s: 1\n  - do: partition\n    from: n1\n", 3, "missing argument 'to'"),
    ("steps:\n  - sleep_s: 1\n  - do: link\n    faults: [{src: n1, loss: 2}]\n", 4, "probability"),
    (
        "steps:\n  - sleep_s: 1\n  - do: weather\n    delay_ms: 5\n    links:\n"
        "      - {src: n1, dst: n2, loss: 3}\n",
        6,
        "links: loss is a probability",
    ),
    ("steps:\n  - sleep_s: 1\n  - do: weather\n    links: fast\n", 4, "links: expected"),
    (
        "steps:\n  - sleep_s: 1\n  - do: throttle\n    nodes: leader\n    stopped_ms: 5\n",
        3,
        "missing argument 'period_ms'",
    ),
    ("steps:\n  - sleep_s: 1\n  - sleep_s: 2\n    do: heal\n", 3, "exactly one of"),
    ("steps:\n  - sleep_s: 1\n  - do: disk\n    nodes: leader\n", 3, "missing argument 'fsync"),
    (
        "steps:\n  - sleep_s: 1\n  - do: disk\n    nodes: all\n    fsync_delay_ms: 9000\n",
        5,
        "fsync_delay_ms: expected a number in [0, 5000]",
    ),
    ("steps:\n  - sleep_s: 1\n  - repeat: 0\n    steps: [{do: heal}]\n", 3, "repeat: expected"),
    ("steps:\n  - sleep_s: 1\n  - remember: leader\n", 3, "missing argument 'as'"),
    ("steps:\n  - sleep_s: 1\n  - do: kill\n    nodes: n1\n    as: leader\n", 5, "as: expected"),
    ("steps:\n  - do: kill\n    nodes: [n1\n", 4, "invalid YAML"),
    ("steps:\n  - sleep_s: 1\n  - 42\n", 3, "a step is a mapping"),
    ("stepz: []\n", 1, "unknown key 'stepz'"),
    ("loop: maybe\nsteps: [{sleep_s: 1}]\n", 1, "loop: expected"),
    ("steps:\n  - do: heal\n", 1, "needs a sleep_s > 0"),
    ("", 1, "an empty schedule"),
    ("steps:\n  - sleep_s: 1\n    sleep_s: 2\n", 3, "duplicate key"),
]


@pytest.mark.parametrize(("text", "line", "words"), BAD)
def test_a_bad_schedule_is_one_line_with_its_file_and_line(
    text: str, line: int, words: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text, "bad.yaml", nodes=3)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"bad.yaml:{line}: "), message
    assert words in message, message


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ScheduleError, match="cannot read"):
        load_schedule(tmp_path / "nope.yaml")


def test_an_executed_log_loads_and_a_bad_one_names_its_line(tmp_path: Path) -> None:
    good = tmp_path / "schedule.yaml"
    good.write_text("steps:\n- at_s: 1.5\n  do: kill\n  nodes: [n2]\n- at_s: 2\n  do: heal\n")
    assert load_executed(good) == [
        {"at_s": 1.5, "do": "kill", "nodes": ["n2"]}, {"at_s": 2, "do": "heal"}
    ]  # fmt: skip
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n- at_s: 1.5\n  do: kill\n- at_s: -1\n  do: heal\n")
    with pytest.raises(ScheduleError, match=r"bad.yaml:4: at_s"):
        load_executed(bad)


def test_throttle_and_unthrottle_steps_parse_with_targets() -> None:
    text = (
        "steps:\n  - sleep_s: 1\n  - do: throttle\n    nodes: leader\n"
        "    stopped_ms: 8\n    period_ms: 20\n  - do: unthrottle\n"
    )
    steps = parse_schedule(text, "starve.yaml", nodes=3).steps
    throttle, unthrottle = steps[1], steps[2]
    assert throttle.kind == "throttle" and throttle.args["stopped_ms"] == 8.0
    assert throttle.args["period_ms"] == 20.0 and throttle.args["nodes"] == "leader"
    assert unthrottle.kind == "unthrottle" and "nodes" not in unthrottle.args


def test_disk_and_disk_reset_steps_parse_with_targets() -> None:
    text = (
        "steps:\n  - sleep_s: 1\n  - do: disk\n    nodes: followers\n"
        "    fsync_delay_ms: 80\n    jitter_ms: 20\n  - do: disk-reset\n"
    )
    steps = parse_schedule(text, "disk.yaml", nodes=3).steps
    slow, reset = steps[1], steps[2]
    assert slow.kind == "disk" and slow.args == {
        "nodes": "followers", "fsync_delay_ms": 80.0, "jitter_ms": 20.0
    }  # fmt: skip
    assert reset.kind == "disk-reset" and "nodes" not in reset.args
