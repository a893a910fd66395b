"""The engine's CPU-thread policy (splinecam.engine.threads): one thread for the small operations,
the user's count for big products and after every call."""

from __future__ import annotations

import os
import threading

import pytest
import torch

import splinecam as sc
from splinecam.engine import geometry, threads


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv("SPLINECAM_THREADS", "1")  # the busy-machine policy, whatever the load now
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)).eval()


def test_partition_runs_single_threaded_and_restores_the_count(two_threads, monkeypatch):
    seen: list[int] = []
    real = geometry.split_by_lines

    def spy(*a, **k):
        seen.append(torch.get_num_threads())
        return real(*a, **k)

    monkeypatch.setattr("splinecam.engine.cutting.split_by_lines", spy)
    monkeypatch.setenv("SPLINECAM_CUT_BACKEND", "torch")  # (the numpy twin of the cutting loop has its own split)
    part = sc.partition(_net(), sc.Slice.box((-2, 2), (-2, 2)))
    assert seen and set(seen) == {1}
    assert torch.get_num_threads() == 2
    assert bool(part.verify(_net(), quick=True))
    assert torch.get_num_threads() == 2


def test_the_count_is_restored_after_an_error(two_threads):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()).eval()
    with pytest.raises(sc.SliceError):
        sc.partition(net, sc.Slice.box((-1, 1), (-1, 1)))  # a 2-D slice into a 3-input model
    assert torch.get_num_threads() == 2


def test_big_products_get_the_users_threads(two_threads):
    with threads.engine_threads():
        assert torch.get_num_threads() == 1
        with threads.big_op(threads.BIG_OP_ELEMENTS):
            assert torch.get_num_threads() == 2
        with threads.big_op(threads.BIG_OP_ELEMENTS - 1):
            assert torch.get_num_threads() == 1
        with threads.engine_threads():  # nested: still one, and the outer exit restores
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with threads.big_op(10**9):  # outside a run: nothing changes
        assert torch.get_num_threads() == 2


def test_concurrent_runs_restore_the_count_once(two_threads):
    box = sc.Slice.box((-2, 2), (-2, 2))
    net = _net()  # (built here: torch's seed is global, threads would interleave their draws)
    counts: list[int] = []

    def work():
        counts.append(sc.partition(net, box).num_regions)

    ts = [threading.Thread(target=work) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(set(counts)) == 1 and len(counts) == 3
    assert torch.get_num_threads() == 2


def test_keep_leaves_torch_alone(two_threads, monkeypatch):
    monkeypatch.setenv("SPLINECAM_THREADS", "keep")
    with threads.engine_threads():
        assert torch.get_num_threads() == 2



def test_auto_mode_is_single_threaded_only_on_a_busy_machine(two_threads, monkeypatch):
    monkeypatch.setenv("SPLINECAM_THREADS", "auto")
    cpus = os.cpu_count() or 1
    monkeypatch.setattr(os, "getloadavg", lambda: (cpus + 1.5, 0.0, 0.0))
    assert threads.machine_is_busy()
    with threads.engine_threads():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert not threads.machine_is_busy()
    with threads.engine_threads():
        assert torch.get_num_threads() == 2
        with threads.big_op(10**9):
            assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2
