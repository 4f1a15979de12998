"""The pure helpers of ``benchmarks/logit_modes_lib.py``: distributions, KL, agreement."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from jitrl.llm import ScoreResult

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "logit_modes_lib.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_logit_modes_lib", PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_distribution_is_a_stable_softmax(bench: ModuleType) -> None:
    p = bench.distribution([1000.0, 1000.0 + math.log(3)])
    assert np.allclose(p, [0.25, 0.75])


def test_kl_is_zero_for_equal_and_known_otherwise(bench: ModuleType) -> None:
    p = np.array([0.5, 0.5])
    assert bench.kl(p, p) == 0.0
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert bench.kl(p, np.array([0.25, 0.75])) == pytest.approx(expected)
    assert bench.kl(np.array([1.0, 0.0]), np.array([0.5, 0.5])) == pytest.approx(math.log(2))


def test_top1_agreement_splits_ties_of_the_mode(bench: ModuleType) -> None:
    p = np.array([0.1, 0.7, 0.2])
    assert bench.top1_agreement(p, np.array([0.2, 0.5, 0.3])) == 1.0
    assert bench.top1_agreement(p, np.array([0.6, 0.3, 0.1])) == 0.0
    assert bench.top1_agreement(p, np.full(3, 1 / 3)) == pytest.approx(1 / 3)


def test_spearman_with_ties_and_constants(bench: ModuleType) -> None:
    assert bench.spearman([3.0, 1.0, 3.0, 2.0], [4.0, 1.0, 4.0, 2.0]) == pytest.approx(1.0)
    assert bench.spearman([1.0, 2.0, 3.0], [10.0, 20.0, 30.0]) == pytest.approx(1.0)
    assert bench.spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert bench.spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) == 0.0


def test_fidelity_of_a_result_with_itself_and_with_a_uniform_one(bench: ModuleType) -> None:
    ref = ScoreResult(logprobs=(-2.0, -6.0, -4.0), token_counts=(2, 2, 1))
    same = bench.fidelity(ref, ref)
    assert same["top1"] == 1.0 and same["kl"] == 0.0 and same["spearman"] == pytest.approx(1.0)
    assert same["uniform"] == 0.0 and same["max_abs_logprob_diff"] == 0.0
    assert same["top_prob"] == pytest.approx(float(bench.distribution([-1.0, -3.0, -4.0]).max()))
    flat = ScoreResult(logprobs=(-math.log(3),) * 3, token_counts=(1, 1, 1))
    scored = bench.fidelity(ref, flat)
    assert scored["uniform"] == 1.0 and scored["spearman"] == 0.0 and scored["kl"] > 0
    assert scored["top1"] == pytest.approx(1 / 3)
    # length-normalised logits (-1, -3, -4): the reference's best is the first candidate
    assert bench.fidelity(ref, ScoreResult((-9.0, -1.0, -9.0), (1, 1, 1)))["top1"] == 0.0
