"""The study's grid as the runner walks it: training order, disjoint shards that keep a lineage together,
and the cost behind the ETA."""

from lintx import grid
from lintx.method import DEFAULT, get_profile
from lintx.model import ModelConfig
from lintx.tasks import noise_from_label

SHIPPED = get_profile(DEFAULT)


def test_a_noise_setting_and_seed_stay_in_one_shard_depth_by_depth_and_the_shards_balance():
    """Every model of a noise setting and seed in one shard (its warm starts' parents are trained there),
    parents before children, the seeds of a model one after the other; the units dealt largest first to the
    shard with the fewest jobs, so one dominant setting is split by seed. The shards' union is the grid."""
    jobs = grid.jobs(SHIPPED, [0, 1], depths=[1, 2], columns=["u1", "c13", "u3"], deep_u5=False)
    assert len(jobs) == 2 * 2 * 3 * 3
    shards = [grid.shard(jobs, i, 2) for i in range(2)]
    assert sorted(map(str, sum(shards, []))) == sorted(map(str, jobs)) and list(map(len, shards)) == [18, 18]
    assert [sorted({(n.label, s) for _, n, s in p}) for p in shards] == [[("c13", 0), ("u1", 0), ("u3", 0)], [("c13", 1), ("u1", 1), ("u3", 1)]]
    first = [(c.variant, c.layers) for c, n, s in shards[0] if n.label == "c13"]
    assert first == [(v, L) for L in (1, 2) for v in ("gdpp", "diag", "full")]
    assert [j for j in jobs if j in shards[0]] == shards[0]  # in the jobs' order
    u6 = grid.jobs(SHIPPED, columns=["u6"], deep_u5=True)  # u6's 105 models, and u5's 15 at depth 8
    parts = [grid.shard(u6, i, 2) for i in range(2)]
    assert sorted(map(len, parts)) == [57, 63] and sorted(map(str, sum(parts, []))) == sorted(map(str, u6))


def test_the_default_seeds_are_the_profiles_and_the_study_is_its_1065_models():
    assert len(grid.jobs(SHIPPED)) == 1065
    assert {s for _, _, s in grid.jobs(SHIPPED)} == set(range(SHIPPED.seeds))


def test_cost_grows_with_depth_batch_and_candidates():
    u5 = noise_from_label("u5")
    one, two = (grid.cost(SHIPPED, ModelConfig("gdpp", L), u5) for L in (1, 2))
    assert two == 2 * one  # one random start at 1 layer; grown only at 2
    diag, full = (grid.cost(SHIPPED, ModelConfig(v, 3), u5) for v in ("diag", "full"))
    assert full == 2 * diag  # FULL at d = 10 trains at twice DIAG's batch, from as many starts


def test_any_shape_and_head_count_is_a_grid_and_a_bad_one_is_refused_by_name():
    import pytest

    jobs = grid.jobs(SHIPPED, [0], depths=[1, 2], columns=["u5"], variants=["diag", "full"], deep_u5=False, d=5, n=10, heads=2)
    assert {(c.d, c.n, c.heads) for c, _, _ in jobs} == {(5, 10, 2)} and len(jobs) == 4
    with pytest.raises(ValueError, match="heads"):
        grid.jobs(SHIPPED, [0], depths=[1], columns=["u5"], deep_u5=False, heads=0)


def test_the_eta_takes_a_models_time_at_another_seed_where_the_log_has_it_and_its_cost_elsewhere():
    from lintx.method import name

    u5 = noise_from_label("u5")
    deep, shallow = ModelConfig("full", 7), ModelConfig("gdpp", 1)
    logged = {name(SHIPPED, deep, u5, 0): 10.0, name(SHIPPED, deep, u5, 1): 20.0, "other.npz": 99.0}
    assert grid.measured_seconds(SHIPPED, [(deep, u5, 2), (shallow, u5, 2), (deep, u5, 3)], logged) == [15.0, None, 15.0]
    # done: an unmeasured job of cost 1 took 3 s (rate 3 s a unit); a measured one took twice its 10 s
    assert grid.eta([1, 1, 2, 2], [None, 10.0, None, 5.0], [3.0, 20.0]) == 2 * 3 + 2 * 5
    assert grid.eta([1, 2], [None, None], [4.0]) == 8.0, "no measured job: every job at the run's rate"
    assert grid.eta([1, 2], [None, None], [4.0, 1.0]) == 0.0
