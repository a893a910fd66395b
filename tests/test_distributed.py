"""``partition_many`` / ``iter_partitions`` / ``local_complexity`` with a ``dask.distributed`` client.

On a real ``LocalCluster`` of two worker processes (one thread each, loopback only, no dashboard):
the results equal those of one machine and come back in order; a worker killed in the middle of a
run has its chunks run again by Dask, and every slice still comes back; a closed client is refused.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch

import splinecam as sc

pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'splinecam[distributed]')"
)

from distributed import Client, LocalCluster  # noqa: E402
from test_many import assert_same_partition  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
        worker_dashboard_address=None,
    ) as cl:
        yield cl


@pytest.fixture(scope="module")
def client(cluster):
    with Client(cluster) as c:
        yield c


def _slices(n: int, dim: int = 10, pad: float = 1.0) -> list[sc.Slice]:
    X = np.random.default_rng(0).normal(size=(n, dim))
    return [sc.Slice.from_anchors(x[None], pad=pad, seed=i) for i, x in enumerate(X)]


def test_results_equal_one_machine_and_come_in_order(client, make_mlp):
    model = make_mlp(0, (10, 24, 24, 3))
    slices = _slices(24)
    local = sc.partition_many(model, slices)
    parts = sc.partition_many(model, slices, client=client, chunk_size=5)
    assert len(parts) == 24
    for p, q, s in zip(parts, local, slices):
        np.testing.assert_array_equal(p.slice.origin, s.origin)
        np.testing.assert_array_equal(p.slice.basis, s.basis)
        assert_same_partition(p, q)
    got = sorted(i for i, _ in sc.iter_partitions(model, slices, client=client))
    assert got == list(range(24))
    assert len(client.scheduler_info()["workers"]) == 2


def test_a_worker_killed_mid_run_has_its_chunks_retried(client, make_mlp):
    model = make_mlp(1, (10, 32, 32, 32, 3))
    slices = _slices(40, pad=1.5)
    local = sc.partition_many(model, slices)
    pids = client.run(os.getpid)
    killed = None
    seen = {}
    for i, part in sc.iter_partitions(model, slices, client=client, chunk_size=2):
        if killed is None:
            # a worker that still has chunks to run (or results not yet fetched)
            busy = [w for w, keys in client.processing().items() if keys]
            assert busy, "no chunk left in flight after the first result"
            killed = pids[busy[0]]
            os.kill(killed, signal.SIGKILL)
        assert i not in seen
        seen[i] = part
    assert sorted(seen) == list(range(40))
    for i, q in enumerate(local):
        assert_same_partition(seen[i], q)
    # the killed worker is gone (its nanny starts a new one)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(client.scheduler_info()["workers"]) < 2:
        time.sleep(0.2)
    assert killed not in client.run(os.getpid).values()


def test_local_complexity_on_the_cluster(client, make_mlp):
    model = make_mlp(2, (6, 16, 16, 3))
    X = torch.randn(10, 6, generator=torch.Generator().manual_seed(0))
    here = sc.local_complexity(model, X, pad=0.5)
    there = sc.local_complexity(model, X, pad=0.5, client=client)
    for c in here.columns:
        np.testing.assert_allclose(there[c], here[c], rtol=1e-9)


def test_closed_client_is_refused(cluster, make_mlp):
    c = Client(cluster)
    c.close()
    with pytest.raises(sc.SplineCamError, match="client is closed"):
        sc.partition_many(make_mlp(0, (2, 4, 1)), [sc.Slice.box()], client=c)
