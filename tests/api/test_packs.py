"""Which waiting runs join a worker's pack (lifecycle.claim_for_pack, peftlab/runs/packs.py): the
fairest of the queue's runs that join packs, within their owners' limits and the pack's room;
never a race's lane or another method. The same with a real worker: tests/faults/test_faults_packs.py."""

import pytest

from peftlab.runs import lifecycle, packs
from peftlab.runs.models import Batch, Run
from workers.methods import validate_run

pytestmark = pytest.mark.django_db(transaction=True)


def queued(owner="", max_concurrent=0, method="lora", params=None, **fields):
    spec = validate_run(method, "sentiment", 20, 0, params or {})
    return Run.objects.create(
        method=method,
        task="sentiment",
        steps=20,
        params=spec.params,
        owner=owner,
        max_concurrent=max_concurrent,
        **fields,
    )


def everything_fits(run_id):
    return True


def test_a_pack_takes_the_fairest_lora_run_and_no_other_method_or_race_lane():
    race = Batch.objects.create(kind=Batch.RACE, task="sentiment", steps=5, seed=0)
    queued("a", method="lora", batch=race, lane=0)
    queued("a", method="adapter")
    flood = [queued("b") for _ in range(3)]
    late = queued("c")
    first = lifecycle.claim_for_pack("cpu", "t", "cpu", everything_fits)
    second = lifecycle.claim_for_pack("cpu", "t", "cpu", everything_fits)
    assert [first.run_id, second.run_id] == [flood[0].pk, late.pk]  # round the owners
    claimed = Run.objects.filter(task_id="t")
    assert set(claimed.values_list("status", "packed", "attempts")) == {(Run.RUNNING, True, 1)}
    rest = [lifecycle.claim_for_pack("cpu", "t", "cpu", everything_fits) for _ in range(3)]
    assert [c.run_id for c in rest[:2]] == [flood[1].pk, flood[2].pk] and rest[2] is None
    assert set(Run.objects.filter(status=Run.QUEUED).values_list("method", "batch")) == {
        ("lora", race.pk),
        ("adapter", None),
    }
    assert Run.objects.get(pk=late.pk).pack() == {"size": 4}


def test_a_pack_respects_each_owners_limit_and_its_room():
    held = queued("s", max_concurrent=1)
    assert lifecycle.claim(held.pk, "t", "cpu").run_id == held.pk
    waiting = queued("s", max_concurrent=1)
    other = queued("u", max_concurrent=1)
    assert lifecycle.claim_for_pack("cpu", "t", "cpu", lambda run_id: False) is None  # no room
    assert Run.objects.get(pk=other.pk).status == Run.QUEUED
    assert lifecycle.claim_for_pack("cpu", "t", "cpu", everything_fits).run_id == other.pk
    assert lifecycle.claim_for_pack("cpu", "t", "cpu", everything_fits) is None  # s is at their 1
    assert Run.objects.get(pk=waiting.pk).status == Run.QUEUED


def test_the_room_bounds_tokens_memory_runs_and_time(settings):
    small, big = queued(params={"rank": 4}), queued(params={"rank": 64, "batch_size": 64})
    size = packs.size_of(small, "fp32")
    assert size.tokens > 0 and size.bytes > 0 and size.seconds > 0
    room = packs.Room()
    assert room.fits(big.pk)  # an empty pack takes any run
    room.add(big.pk)
    settings.PEFTLAB_PACK_TOKENS = packs.size_of(big, "fp32").tokens + size.tokens - 1
    assert not room.fits(small.pk)
    settings.PEFTLAB_PACK_TOKENS = 10**6
    assert room.fits(small.pk)
    settings.PEFTLAB_PACK_MEMORY_MB = 1
    assert not room.fits(small.pk)
    settings.PEFTLAB_PACK_MEMORY_MB = 10**5
    settings.PEFTLAB_PACK_RUNS = 1
    assert not room.fits(small.pk)
    settings.PEFTLAB_PACK_RUNS = 48
    settings.PEFTLAB_RUN_TIME_LIMIT = 1  # a run estimated to take longer than the window left
    assert not room.fits(small.pk)
    settings.PEFTLAB_RUN_TIME_LIMIT = 3600
    assert room.fits(small.pk)
    room.add(small.pk)
    room.give_back(big.pk)
    assert list(room.held) == [small.pk]


def test_a_message_that_may_start_a_pack_carries_limits_beyond_twice_a_runs(settings):
    settings.PEFTLAB_RUN_TIME_LIMIT = 100
    settings.CELERY_TASK_TIME_LIMIT = 160
    soft, hard = lifecycle.pack_time_limits()
    assert soft > 200 and hard - soft == 60
    settings.PEFTLAB_RUN_TIME_LIMIT = 0
    assert lifecycle.pack_time_limits() is None


def test_the_room_takes_the_devices_free_memory_where_it_is_less():
    run = queued()
    room = packs.Room(memory=1)
    room.add(queued().pk)
    assert not room.fits(run.pk)
    assert packs.Room(memory=10**12, held={queued().pk: packs.Size(1, 1, 1.0)}).fits(run.pk)


def test_a_limited_owners_sweep_still_trains_one_lane_at_a_time_in_a_pack():
    sweep = Batch.objects.create(kind=Batch.RANK_SWEEP, task="sentiment", steps=20, seed=0)
    lanes = [queued("s", max_concurrent=2, batch=sweep, lane=lane) for lane in range(2)]
    lone = queued("s", max_concurrent=2)
    assert lifecycle.claim(lanes[0].pk, "t", "cpu").run_id == lanes[0].pk
    assert lifecycle.claim_for_pack("cpu", "t", "cpu", everything_fits).run_id == lone.pk
    assert lifecycle.claim_for_pack("cpu", "t", "cpu", everything_fits) is None
    assert Run.objects.get(pk=lanes[1].pk).status == Run.QUEUED
