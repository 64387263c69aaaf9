"""Typed records and pure functions: ``choose`` leaves its candidates alone and its warnings stay objects until
they are rendered; the monitor's configuration builds the monitor; the collapse alarm's frozen rule and its
running state (checkpointed, old Lightning checkpoints included); keyword-only flags."""

from __future__ import annotations

import copy
import dataclasses
import io

import pytest

from rankme.monitor import CollapseAlarm
from rankme.reporting.select_report import selection_rows, selection_text
from rankme.selection.candidates import Candidate
from rankme.selection.rules import REFERENCE_NOTE, SweepPoint, choose, picked_accuracy
from rankme.selection.warnings import SelectionWarning


def _candidates() -> list[Candidate]:
    """Three runs over ``lr`` (RankMe rises with lr: the pick is the edge lr=0.3) and one model scanned by layer,
    whose ``output`` (the highest RankMe) is shown for reference only."""
    runs = [Candidate(f"run{i}", "", 100, 8, {"rankme": r}, {"lr": lr}) for i, (r, lr) in
            enumerate([(5.0, 0.1), (6.0, 0.2), (7.0, 0.3)])]
    enc = [Candidate("enc", tap, 100, 8, {"rankme": r}, {"lr": 0.2}) for tap, r in [("block1", 4.0), ("output", 7.9)]]
    return [*runs, *enc]


def test_choose_leaves_its_candidates_alone_and_repeats_exactly():
    cands = _candidates()
    before = copy.deepcopy(cands)
    first = choose(cands, param="lr").to_dict()
    second = choose(cands, param="lr")
    assert cands == before  # no note appended, no warning attached to the caller's records
    assert second.to_dict() == first  # the old code doubled the reference note on the second call
    ref = next(c for c in second.candidates if c.layer == "output")
    assert ref.notes == [REFERENCE_NOTE] and second.best.name == "run2"
    # choosing again among the result's own records adds nothing either
    again = choose(second.candidates, param="lr")
    assert again.to_dict() == first and next(c for c in again.candidates if c.layer == "output").notes == [REFERENCE_NOTE]
    # the result is consistent: the pick is the ranked record itself (the report finds it by identity)
    assert second.best is second.candidates[0] is second.picks[8]


def test_the_pick_carries_warning_objects_rendered_only_at_the_edge():
    sel = choose(_candidates(), param="lr")
    assert [w.code for w in sel.warnings] == ["edge"]
    assert sel.best.warnings == sel.warnings and all(isinstance(w, SelectionWarning) for w in sel.best.warnings)
    assert all(c.warnings == [] for c in sel.candidates if c is not sel.best)
    rows, _ = selection_rows(sel, ["rankme"])
    assert rows[0]["candidate"] == "run2" and rows[0]["note"] == "⚠ edge"
    assert [r["note"] for r in rows[1:]] == ["", "", "", ""]
    # JSON as before: the candidate's warnings as "[code] message" lines, the selection's as code + message
    d = sel.to_dict()
    assert d["candidates"][0]["warnings"] == [str(sel.warnings[0])] and str(sel.warnings[0]).startswith("[edge] ")
    assert d["warnings"] == [{"code": "edge", "message": sel.warnings[0].message}]
    assert any(line.startswith("warning [edge] RankMe picks the largest lr swept (0.3)") for line in selection_text(sel))


def test_picked_accuracy_takes_ood_by_keyword_only():
    pts = [SweepPoint(1.0, 60.0, 30.0, 1), SweepPoint(2.0, 70.0, 40.0, 1)]
    assert picked_accuracy(pts, "oracle", ood=True) == 40.0
    with pytest.raises(TypeError):
        picked_accuracy(pts, "oracle", True)  # type: ignore[misc]


def test_monitor_config_builds_the_monitor_and_takes_options_by_keyword():
    torch = pytest.importorskip("torch")
    from rankme.monitor import MonitorConfig

    with pytest.raises(TypeError):
        MonitorConfig("0", 2)  # type: ignore[misc]
    alarm = CollapseAlarm(threshold=1.0)
    cfg = MonitorConfig("0", samples=None, metrics=["rankme", "stable_rank"], pool="flatten", alarm=alarm)
    net, probe = torch.nn.Sequential(torch.nn.Linear(4, 4)), [torch.eye(4)]
    mon = cfg.build(net, probe)
    assert (mon.model, mon.probe_loader, mon.samples, mon.metrics, mon.pool, mon.alarm) == (
        net, probe, None, ["rankme", "stable_rank"], "flatten", alarm)
    assert cfg.build(net, probe, reuse=mon) is mon
    assert cfg.build(net, [torch.eye(4)], reuse=mon) is not mon  # another probe set: a new monitor
    assert cfg.build(net, probe, taps="0", reuse=mon) is not mon  # other taps: a new monitor


def _trips(alarm: CollapseAlarm, values) -> list[str | None]:
    return [alarm.check("p", v, 100, 64) for v in values]


VALUES = (9.0, 3.0, 4.0, 9.0, 2.0, 2.0, 1.0, 9.0)


def test_collapse_alarm_rule_is_frozen_and_its_state_resumes_anywhere():
    whole = _trips(CollapseAlarm(threshold=5.0, relative_drop=0.5), VALUES)
    assert [r is not None for r in whole] == [False, False, True, False, False, True, True, False]
    for cut in range(len(VALUES) + 1):
        before = CollapseAlarm(threshold=5.0, relative_drop=0.5)
        head = _trips(before, VALUES[:cut])
        resumed = CollapseAlarm(threshold=5.0, relative_drop=0.5)
        resumed.load_state_dict(copy.deepcopy(before.state_dict()))
        assert head + _trips(resumed, VALUES[cut:]) == whole
    alarm = CollapseAlarm(threshold=5.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        alarm.threshold = 1.0  # type: ignore[misc]
    assert alarm == CollapseAlarm(threshold=5.0) and "state" not in repr(alarm)
    with pytest.raises(ValueError, match=r"collapse-alarm state lacks 'seen': pass what CollapseAlarm.state_dict"):
        alarm.load_state_dict({"previous": {}, "streak": {}})
    with pytest.raises(ValueError, match=r"collapse-alarm state 'streak' must map tap names to numbers"):
        alarm.load_state_dict({"previous": {}, "seen": {}, "streak": {"p": "two"}})


def test_collapse_alarm_state_survives_a_weights_only_torch_checkpoint():
    torch = pytest.importorskip("torch")
    alarm = CollapseAlarm(threshold=5.0)
    _trips(alarm, VALUES[:3])
    buf = io.BytesIO()
    torch.save(alarm.state_dict(), buf)
    buf.seek(0)
    resumed = CollapseAlarm(threshold=5.0)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    assert resumed.state == alarm.state and _trips(resumed, VALUES[3:]) == _trips(alarm, VALUES[3:])


def test_lightning_callback_checkpoints_the_alarm_and_resumes_old_checkpoints():
    pytest.importorskip("lightning")
    from rankme.integrations.lightning import RankMeCallback

    def callback() -> RankMeCallback:
        return RankMeCallback([], taps="projector", alarm=CollapseAlarm(threshold=5.0, relative_drop=0.5))

    cb = callback()
    _trips(cb.config.alarm, VALUES[:5])
    state = cb.state_dict()
    assert state["alarm"] == cb.config.alarm.state_dict()
    tail = _trips(copy.deepcopy(cb.config.alarm), VALUES[5:])
    new = callback()
    new.load_state_dict(state)
    assert new.config.alarm.state == cb.config.alarm.state and _trips(new.config.alarm, VALUES[5:]) == tail
    # a checkpoint written before the alarm had its own state_dict
    old = {"history": [{"epoch": 0.0}], "stop_reason": None,
           **{f"alarm_{k}": v for k, v in cb.config.alarm.state_dict().items()}}
    legacy = callback()
    legacy.load_state_dict(old)
    assert legacy.history == [{"epoch": 0.0}] and legacy.config.alarm.state == cb.config.alarm.state
    assert _trips(legacy.config.alarm, VALUES[5:]) == tail
    # no alarm configured: the saved state is ignored; none saved: the alarm keeps its own
    quiet = RankMeCallback([], taps="projector")
    quiet.load_state_dict(state)
    assert quiet.state_dict()["alarm"] is None
    fresh = callback()
    fresh.load_state_dict({"history": [], "stop_reason": None, "alarm": None})
    assert fresh.config.alarm.state == CollapseAlarm().state
