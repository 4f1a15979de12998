"""Helpers of ``logit_modes.py``: agreement between two distributions, and the server.

- :func:`fidelity` compares a mode's base distribution with the reference's: top-1 agreement,
  KL(ref || mode), Spearman rank correlation (pure functions, tested in
  ``tests/test_bench_logit_modes.py``);
- :func:`serve` runs ``python -m llama_cpp.server`` with the embedded SmolLM2 on loopback
  (``--logits_all true``: echoed prompt log-probs need it) and always stops it.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from jitrl.config import PolicyConfig
from jitrl.llm import ScoreResult
from jitrl.llm.llamacpp import embedded_model_path

log = logging.getLogger("logit_modes")
SERVED_NAME = "smollm2"
READY_TIMEOUT_S = 300.0
LENGTH_NORMALISE = PolicyConfig().length_normalise
"""The agent's base logits are per-token means (``ScoreResult.logits``) unless configured off."""


def distribution(logits: Sequence[float]) -> np.ndarray:
    """``softmax(logits)`` as float64."""
    z = np.asarray(logits, dtype=np.float64)
    e = np.exp(z - z.max())
    return np.asarray(e / e.sum())


def kl(p: np.ndarray, q: np.ndarray) -> float:
    """``KL(p || q)`` in nats (terms with ``p = 0`` count 0; rounding below 0 clipped)."""
    mask = p > 0
    return max(0.0, float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask])))))


def top1_agreement(p: np.ndarray, q: np.ndarray) -> float:
    """Chance that greedy choice on ``q`` picks ``p``'s best option (ties in ``q`` split
    evenly; ``p``'s ties: any of its best counts)."""
    q_best = np.flatnonzero(np.isclose(q, q.max(), rtol=0, atol=1e-12))
    p_best = set(np.flatnonzero(np.isclose(p, p.max(), rtol=0, atol=1e-12)).tolist())
    return sum(int(i) in p_best for i in q_best) / len(q_best)


def ranks(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1; tied values share their mean rank."""
    _, inverse, counts = np.unique(np.asarray(values), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return np.asarray(((ends - counts + 1 + ends) / 2)[inverse], dtype=np.float64)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation; 0.0 when either side is constant (no order to agree on)."""
    ra, rb = ranks(a), ranks(b)
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])


def fidelity(reference: ScoreResult, result: ScoreResult) -> dict[str, float]:
    """Agreement of ``result``'s base distribution with the reference's."""
    p = distribution(reference.logits(LENGTH_NORMALISE))
    q, q_raw = distribution(result.logits(LENGTH_NORMALISE)), result.logprobs
    return {
        "top1": top1_agreement(p, q),
        "kl": kl(p, q),
        "kl_summed_ref": kl(distribution(reference.logprobs), q),
        "spearman": spearman(p.tolist(), q.tolist()),
        "top_prob": float(q.max()),
        "uniform": float(np.ptp(q) < 1e-9),
        "max_abs_logprob_diff": float(np.abs(np.subtract(reference.logprobs, q_raw)).max()),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server not ready at {url} after {READY_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def serve(threads: int, log_path: Path) -> Iterator[str]:
    """Run llama-cpp-python's server on loopback; yield its ``/v1`` URL; always stop it."""
    port = _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_model_path()),
        "--model_alias", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
        "--logits_all", "true", "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--verbose", "false",
    ]  # fmt: skip
    with log_path.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            _wait_ready(process, url, log_path)
            log.info("server pid %d ready at %s", process.pid, url)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.info("server pid %d stopped", process.pid)
