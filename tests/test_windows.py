"""Window plans and silent windows: device-side, no heavy dependencies."""

from __future__ import annotations

import numpy as np

from edge_audio.frontend import FrontendConfig
from edge_audio.windows import FLOOR_DB, WindowPlan, is_silent


def test_no_clip_end_is_counted_twice():
    plan = WindowPlan(124, "segments", 62)
    for frames in range(124, 700):
        starts = plan.windows_of(frames)
        if len(starts) == 1:  # a clip a little longer than the window: centred
            assert frames - 124 < 31 and starts[0] == (frames - 124) // 2, frames
            continue
        assert starts[0] == 0 and starts[-1] == frames - 124, frames
        # Consecutive windows are between half a hop and one and a half hops apart.
        gaps = np.diff(starts)
        assert ((gaps >= 31) & (gaps <= 93)).all(), (frames, starts)


def test_silent_windows_are_found_and_left_out_of_a_clip_score():
    loud = np.full((50, 8), -30.0, np.float32)
    silent = np.full((50, 8), FLOOR_DB, np.float32)
    assert is_silent(np.stack([loud, silent])).tolist() == [False, True]
    # A faint sound well above the floor is not silence.
    assert not is_silent(np.full((50, 8), FLOOR_DB + 5.0))
    clip = np.concatenate([loud, silent, silent, loud[:10]])  # 160 frames
    plan = WindowPlan(50, "segments", 50)
    assert plan.windows_of(160) == [0, 50, 110]
    windows = plan.clip_windows(clip)
    assert len(windows) == 2 and not is_silent(windows).any()
    # A clip that is silent throughout keeps one window (it still gets a score).
    assert len(plan.clip_windows(np.full((160, 8), FLOOR_DB, np.float32))) == 1


def test_the_frontend_floor_is_its_log_floor_in_db():
    assert FrontendConfig().floor_db == FLOOR_DB
    assert FrontendConfig(log_floor=1e-5).floor_db == -50.0
