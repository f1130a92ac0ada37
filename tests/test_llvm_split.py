"""A module split into parts (module_split.py) compiled on several threads computes what the
whole module computes: a Momentum train step of an MLP and of a small CNN, forced into two and
three parts, against the interpreter; every moved kernel is defined in exactly one part and
declared where it is used; the object cache stores and reloads every part."""
from __future__ import annotations

import re

import numpy as np
import pytest

from sporeflow.backends.llvm import jit, module_split, parallel

from small_nets import CNN, MLP, train_momentum


def _train(make_net, x, y, backend):
    """(losses, parameters, the LLVM executable or None) after two Momentum steps."""
    losses, params, step = train_momentum(make_net, x, y, backend, steps=2)
    return losses, params, next(iter(step._cache.values())).executable if backend == "llvm" else None


@pytest.fixture
def small_parts(monkeypatch, tmp_path):
    """Every kernel launched on threads and every part worth making, however small, and a
    cache of this test's own."""
    if not parallel.gomp_available():
        pytest.skip("libgomp is not loadable here: no kernel is launched through a pointer, nothing to split")
    monkeypatch.setattr(parallel, "PARALLEL_WORK", 0)
    monkeypatch.setattr(module_split, "MIN_PART_LINES", 0)
    monkeypatch.setenv("SPOREFLOW_CACHE_DIR", str(tmp_path))
    return monkeypatch


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("make_net,xshape,ncls", [(MLP, (8, 6), 4), (CNN, (3, 2, 6, 6), 3)], ids=["mlp", "cnn"])
def test_split_module_computes_what_the_interpreter_does(small_parts, threads, make_net, xshape, ncls, rng):
    small_parts.setenv("SPOREFLOW_COMPILE_THREADS", str(threads))
    x = rng.normal(size=xshape).astype(np.float32)
    y = rng.integers(0, ncls, xshape[0]).astype(np.int32)
    l_llvm, p_llvm, exe = _train(make_net, x, y, "llvm")
    l_ref, p_ref, _ = _train(make_net, x, y, "interp")
    assert exe.stats["parts"] == threads
    np.testing.assert_allclose(l_llvm, l_ref, rtol=1e-4)
    for a, b in zip(p_llvm, p_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert exe.asm.count("# part ") == threads


def test_each_moved_kernel_is_defined_once_and_declared_where_used(small_parts, rng):
    small_parts.setenv("SPOREFLOW_COMPILE_THREADS", "2")
    x = rng.normal(size=(8, 6)).astype(np.float32)
    _, _, exe = _train(MLP, x, rng.integers(0, 4, 8).astype(np.int32), "llvm")
    parts = module_split.split(exe.source, 2)
    assert len(parts) == 2
    defined = [set(re.findall(r"^define (?!internal)[^@]*@([\w.$]+)\(", p, re.M)) for p in parts]
    declared = [set(re.findall(r"^declare [^@]*@([\w.$]+)\(", p, re.M)) for p in parts]
    assert exe.entry in defined[0] and not defined[0] & defined[1]
    assert defined[1] and defined[1] <= declared[0]      # part 1's kernels, launched from part 0
    assert all(name.endswith("_omp") for name in defined[1])


def test_parts_compiled_at_once_equal_parts_compiled_in_turn_and_the_cache_reloads_them(small_parts, rng):
    """Same object bytes from two threads as from one (LLVM is deterministic: a race between
    the threads would show here), and every part back from the cache."""
    small_parts.setenv("SPOREFLOW_COMPILE_THREADS", "2")
    x = rng.normal(size=(8, 6)).astype(np.float32)
    _, _, exe = _train(MLP, x, rng.integers(0, 4, 8).astype(np.int32), "llvm")
    objs, stats = jit.compile_object(exe.source)
    assert stats["cache"] == "hit" and len(objs) == 2
    assert objs == [jit._compile_part(p)[0] for p in module_split.split(exe.source, 2)]
    small_parts.setenv("SPOREFLOW_COMPILE_THREADS", "1")
    assert module_split.split(exe.source, jit.compile_threads()) == [exe.source]


def test_a_module_without_pointer_launched_kernels_stays_whole():
    text = "define void @f(ptr %p) {\nentry:\n  ret void\n}\n"
    assert module_split.split(text, 4, min_part_lines=0) == [text]


def test_compile_threads_setting_is_checked(monkeypatch):
    monkeypatch.setenv("SPOREFLOW_COMPILE_THREADS", "two")
    with pytest.raises(ValueError, match="SPOREFLOW_COMPILE_THREADS must be a positive integer"):
        jit.compile_threads()
    monkeypatch.setenv("SPOREFLOW_COMPILE_THREADS", "3")
    assert jit.compile_threads() == 3
