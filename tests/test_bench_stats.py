"""The benchmark's statistics step runs end to end at a tiny size: purchases stored, rollups rebuilt from them,
every stats endpoint and the dashboard answered (any answer but 200 fails the step)."""

from __future__ import annotations

from bench import stats


def test_the_stats_step_times_every_endpoint_and_the_rebuild() -> None:
    result = stats.main(["--purchases", "60", "--repeat", "1"])
    assert result["purchases"] == 60
    assert result["rollup_cells"] > 60
    assert result["rebuild_s"] > 0
    assert set(result["endpoints_ms"]) == {*stats.ENDPOINTS, "/console/dashboard", "/console/dashboard?range=30d"}
    assert all(timing["count"] == 1 for timing in result["endpoints_ms"].values())
