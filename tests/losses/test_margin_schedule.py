import pytest

from spkpeft.losses import MarginSchedule


def test_linear_ramp():
    sched = MarginSchedule(final=0.2, start=10, ramp=20)
    assert sched(0) == 0.0 and sched(9) == 0.0
    assert sched(10) == pytest.approx(0.0)
    assert sched(20) == pytest.approx(0.1)
    assert sched(30) == pytest.approx(0.2) and sched(1000) == pytest.approx(0.2)


def test_exp_ramp_is_fast_then_slow():
    sched = MarginSchedule(final=0.2, start=0, ramp=100, kind="exp")
    # WeSpeaker: ratio = 1 - 1e-3 ** progress
    assert sched(50) == pytest.approx(0.2 * (1 - 1e-3**0.5))
    assert sched(50) > 0.1


def test_from_epochs_uses_wespeaker_one_based_epochs():
    sched = MarginSchedule.from_epochs(0.3, steps_per_epoch=100, increase_start_epoch=3, fix_start_epoch=5)
    assert (sched.start, sched.ramp) == (200, 200)
    assert sched(199) == 0.0 and sched(300) == pytest.approx(0.15) and sched(400) == pytest.approx(0.3)


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="kind"):
        MarginSchedule(final=0.2, kind="cosine")
    with pytest.raises(ValueError, match="fix_start_epoch"):
        MarginSchedule.from_epochs(0.2, 10, 5, 3)
