"""discover.records: the record schema, pinned.  The log, the hall of fame and the checkpoint
are what users keep; a change to their fields must bump a version (and say how old run
directories are treated), never slip in."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from discover import records, rundir
from discover.records import (
    REJECTED,
    REJECTED_SCORE,
    SCHEMA_VERSION,
    Evaluation,
    HallEntry,
    Hurdle,
    JobResult,
    LogRecord,
    SchemaError,
    TaskScore,
)
from tasks.base import WORST_SCORE

# If one of these fails, the run directory's format changed: bump SCHEMA_VERSION (records) or
# rundir.STATE_VERSION (state.json), decide what happens to run directories of the old
# version (validate_run_dir refuses them with a one-line reason, or a migration reads them),
# say it in docs/DESIGN.md, and re-pin.
PINNED_LOG_FIELDS = [
    "seq", "program", "fingerprint", "parent", "mutation", "status", "score", "scores", "lr",
    "losses", "task_status", "held_out_score", "held_out_scores", "held_out_lr", "seconds",
    "worker", "time", "error", "held_out_status", "interval", "held_out_interval", "hurdle",
    "island", "promotion_score", "promotion_scores", "promotion_lr", "promotion_interval",
]
PINNED_HALL_FIELDS = [
    "rank", "program", "original_program", "fingerprint", "search_score", "held_out_score",
    "scores", "held_out_scores", "lr", "held_out_lr", "seq", "parent", "mutation",
    "held_out_interval", "promotion_score", "promotion_interval",
]
PINNED_STATE_KEYS = ["version", "log_count", "fingerprint_version", "elapsed_seconds",
                     "invocations", "evolution"]


def test_versions_and_fields_are_pinned():
    assert SCHEMA_VERSION == 4 and rundir.STATE_VERSION == 4
    assert [f.name for f in dataclasses.fields(LogRecord)] == PINNED_LOG_FIELDS
    assert [f.name for f in dataclasses.fields(HallEntry)] == PINNED_HALL_FIELDS


def result(held: bool = True) -> JobResult:
    search = Evaluation((TaskScore("quadratic", -0.25, 0.125, 0.1, "ok"),
                         TaskScore("logistic", WORST_SCORE, math.nan, math.nan, "nonfinite")),
                        (-0.25 + WORST_SCORE) / 2, "ok", 1.5)
    held_out = Evaluation((TaskScore("digits_cnn", 0.5, 0.25, 0.01, "ok", (0.25, 0.75)),),
                          0.5, "ok", 3.0, interval=(-0.125, 1.0))
    return JobResult(search, held_out if held else None, 4.56789, 4.0, "actor-1")


def test_a_log_line_is_exactly_this_json():
    """The line ``evaluations.jsonl`` holds for a made-up result, key for key: what a user's
    script reading the log relies on.  Non-finite losses and rates are null."""
    record = LogRecord.from_result(7, "def f(g, lr):\n    u = g * lr\n    return u\n", "ab" * 8,
                                   "cd" * 8, {"kind": "op", "detail": "x"}, result(), 12.3456)
    assert record.to_json() == {
        "seq": 7, "program": "def f(g, lr):\n    u = g * lr\n    return u\n",
        "fingerprint": "abababababababab", "parent": "cdcdcdcdcdcdcdcd",
        "mutation": {"kind": "op", "detail": "x"}, "status": "ok", "score": 0.875,
        "scores": {"quadratic": -0.25, "logistic": 2.0},
        "lr": {"quadratic": 0.1, "logistic": None},
        "losses": {"quadratic": 0.125, "logistic": None},
        "task_status": {"quadratic": "ok", "logistic": "nonfinite"},
        "held_out_score": 0.5, "held_out_scores": {"digits_cnn": 0.5},
        "held_out_lr": {"digits_cnn": 0.01}, "seconds": 4.5679, "worker": "actor-1",
        "time": 12.346, "held_out_interval": [-0.125, 1.0]}
    line = json.dumps(record.to_json(), allow_nan=False)
    assert LogRecord.from_json(json.loads(line)) == record


def test_a_child_stopped_at_the_hurdle_is_this_json_and_reads_back():
    first = TaskScore("quadratic", 0.75, 0.5, 0.1, "ok", (0.75,), windows=1)
    search = Evaluation((first,), REJECTED_SCORE, REJECTED, 0.25,
                        hurdle=Hurdle("quadratic", 0.75, 0.5, False))
    record = LogRecord.from_result(3, "p", "ab" * 8, None, {"kind": "op", "detail": "x"},
                                   JobResult(search, None, 0.25, 0.25, "w"), 1.0)
    line = record.to_json()
    assert (line["status"], line["score"], line["scores"]) == ("rejected", 1.0,
                                                                {"quadratic": 0.75})
    assert line["hurdle"] == {"task": "quadratic", "score": 0.75, "threshold": 0.5,
                              "passed": False, "audit": False}
    assert LogRecord.from_json(json.loads(json.dumps(line, allow_nan=False))) == record
    assert Evaluation.from_dict(json.loads(json.dumps(search.to_dict()))) == search
    # a record of schema 2 (no hurdle) reads back with none
    del line["hurdle"]
    assert LogRecord.from_json(line).hurdle is None


def test_failures_and_timeouts_are_records_with_their_reason():
    failed = LogRecord.from_result(0, "p", "f" * 16, None, {}, JobResult.failed("boom", "w"), 0)
    assert (failed.status, failed.score, failed.search_score, failed.error) == (
        "failed", None, WORST_SCORE, "boom")
    assert failed.to_json()["error"] == "boom" and "held_out_status" not in failed.to_json()
    late = LogRecord.from_result(1, "p", "f" * 16, None, {}, JobResult.timeout(9.5, 9, "w"), 0)
    assert (late.status, late.score) == ("timeout", WORST_SCORE)
    assert "eval_timeout 9 s" in late.error
    search = result(held=False).search
    bad_held = JobResult(search, Evaluation.failed("x", "failed"), 1.0, 1.0, "w")
    record = LogRecord.from_result(2, "p", "f" * 16, None, {}, bad_held, 0)
    assert record.held_out_status == "failed" and record.held_out_score is None


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.pop("fingerprint"), "record.fingerprint is missing"),
    (lambda d: d.update(seq="7"), "record.seq is '7', expected an integer"),
    (lambda d: d.update(score=True), "record.score is True, expected"),
    (lambda d: d.update(scores=[]), "record.scores is [], expected an object"),
])
def test_a_wrong_field_is_a_schema_error_naming_it(change, message):
    data = LogRecord.from_result(3, "p", "f" * 16, None, {}, result(), 0).to_json()
    change(data)
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        LogRecord.from_json(data)
    with pytest.raises(SchemaError, match="not an object"):
        LogRecord.from_json([data])


def test_hall_entry_round_trips_and_takes_the_record_fields():
    record = LogRecord.from_result(5, "original", "e" * 16, None, {"kind": "insert"}, result(),
                                   1.0)
    entry = HallEntry.from_record(2, record, "pruned")
    assert (entry.rank, entry.program, entry.original_program) == (2, "pruned", "original")
    assert (entry.search_score, entry.held_out_score) == (record.score, 0.5)
    assert list(entry.to_json()) == PINNED_HALL_FIELDS
    assert HallEntry.from_json(json.loads(json.dumps(entry.to_json()))) == entry
    with pytest.raises(SchemaError, match="hall-of-fame entry.rank is missing"):
        HallEntry.from_json({k: v for k, v in entry.to_json().items() if k != "rank"})


def test_evaluation_json_has_no_nan():
    ev = result().search
    data = ev.to_dict()
    json.dumps(data, allow_nan=False)  # raises on NaN
    assert Evaluation.from_dict(data).scores[1].status == "nonfinite"
    assert math.isnan(Evaluation.from_dict(data).scores[1].loss)
    assert records.finite_or_none(math.inf) is None and records.finite_or_none(2) == 2.0


def test_a_checkpoint_has_the_pinned_keys(tmp_path):
    from discover.campaign import Campaign
    from discover.config import CampaignConfig

    config = CampaignConfig(tasks=("quadratic",), held_out_tasks=(), population_size=4,
                            workers=0, progress_seconds=0)
    campaign = Campaign.create(config, str(tmp_path / "run"))
    campaign.close()
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert sorted(state) == sorted(PINNED_STATE_KEYS)
    assert state["version"] == rundir.STATE_VERSION and state["fingerprint_version"] == "fp2"
    # hurdle_scores, next_island and mutation_outcomes were added within version 3: a state
    # without them reads as no recent scores, island 0 next and no outcomes; version 4 drops
    # version 3's copy of the fitness cache (rebuilt from the log)
    assert sorted(state["evolution"]) == sorted(
        ["next_seq", "counters", "population", "pending", "waiting", "starts",
         "hall_of_fame", "best", "logbook", "rng", "hurdle_scores", "next_island",
         "mutation_outcomes"])
