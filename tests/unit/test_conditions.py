from azure_vm_operator.api import conditions as cond


def test_transition_time_changes_only_when_status_flips():
    first = cond.merge_conditions([], [cond.Condition("Ready", False, "Creating", "m")], 1, now="T1")
    same = cond.merge_conditions(first, [cond.Condition("Ready", False, "Updating", "m2")], 2, now="T2")
    flipped = cond.merge_conditions(same, [cond.Condition("Ready", True, "Reconciled", "")], 2, now="T3")
    assert first[0]["lastTransitionTime"] == "T1"
    assert same[0]["lastTransitionTime"] == "T1" and same[0]["reason"] == "Updating"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "T3" and flipped[0]["status"] == "True"


def test_kstatus_order_and_untouched_conditions_kept():
    current = [{"type": "Custom", "status": "True", "reason": "x"}]
    result = cond.merge_conditions(current, [cond.Condition("Stalled", False, "r"), cond.Condition("Ready", True, "r")], 1)
    assert [c["type"] for c in result] == ["Ready", "Stalled", "Custom"]


def test_changed_conditions_reports_status_or_reason_changes_only():
    before = cond.merge_conditions([], [cond.Condition("Ready", False, "Creating", "a")], 1)
    after_msg = cond.merge_conditions(before, [cond.Condition("Ready", False, "Creating", "b")], 1)
    after_reason = cond.merge_conditions(before, [cond.Condition("Ready", False, "AllocationFailed", "b")], 1)
    assert cond.changed_conditions(before, after_msg) == []
    assert [c["reason"] for c in cond.changed_conditions(before, after_reason)] == ["AllocationFailed"]
