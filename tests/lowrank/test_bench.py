"""The small rank experiment behind the benchmark's rank curves (a short run of it)."""

from tinylr.lowrank.bench import rank_experiment


def test_rank_experiment_logs_each_run_once_per_epoch():
    runs = rank_experiment(epochs=2)
    assert len(runs) == 4 and sum("batch 16, wd 0.005" in label for label in runs) == 1
    for history in runs.values():
        assert [h["epoch"] for h in history] == [0, 1, 2]
        hidden = history[-1]["layers"]["hidden"]
        assert hidden["full_rank"] == 64 and 1 <= hidden["effective_rank"] <= 64
