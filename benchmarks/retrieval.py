"""Retrieval at scale: exact scan vs MinHash LSH vs vector index, at 10k, 100k and 1M records.

For each memory (``synthetic`` and ``jericho``, see ``retrieval_data.py``) and size, one
:class:`~jitrl.retrieval.index.MemoryIndex` is built and each candidate index is switched in over
the same records (:meth:`~jitrl.retrieval.index.MemoryIndex.set_candidates`):

- ``exact``: the default inverted n-gram index (every state sharing an n-gram is scored);
- ``lsh``: :class:`~jitrl.retrieval.lsh.MinHashLSHIndex`, re-scored exactly;
- ``vector``: :class:`~jitrl.retrieval.vector.VectorIndex` with the hashing embedding;
- ``vector-minilm``: the same with all-MiniLM-L6-v2 (only at ``--minilm-size``; slow to embed).

Latency is the wall time of ``neighbours()`` per query (p50/p99), and ``decision`` adds the value
estimates over the neighbours (the whole memory part of a decision). recall@k compares the
returned records with the exact top-k (queries whose exact result is empty are not counted).
The exact scan is slow at 1M records, so there it runs on a subsample of the queries and every
index's recall is computed on that subsample.

Tuning is honest: LSH (threshold, permutations) and the vector candidate count are chosen on
*tuning* queries (held-out episodes of another seed) at ``--tune-size``, before and apart from
the test queries: the fastest setting whose tuning recall@k is at least ``--tune-recall`` on
every memory. Writes ``retrieval.json`` and ``retrieval.png`` to ``--out`` and prints a table.

    python benchmarks/retrieval.py                       # 10k, 100k, 1M (about an hour here)
    python benchmarks/retrieval.py --sizes 10000 --queries 100 --tune-size 10000   # quick
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # small matmuls; threads only contend here

import argparse
import gc
import json
import logging
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from jitrl.envs.factory import JERICHO_DIR_ENV_VAR
from jitrl.method.config import RetrievalConfig, ValueConfig
from jitrl.method.types import Neighbour, State
from jitrl.method.values import estimate
from jitrl.retrieval import CandidateIndex, ExactIndex
from jitrl.retrieval.index import MemoryIndex
from jitrl.retrieval.lsh import MinHashLSHIndex
from jitrl.retrieval.vector import HashingEmbedder, VectorIndex
from retrieval_data import (
    JerichoMemory,
    SyntheticWorld,
    jericho_traces,
    played_jericho_traces,
    queries,
    take,
)

log = logging.getLogger("retrieval")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results"
JERICHO_GAMES = Path(
    os.environ.get(JERICHO_DIR_ENV_VAR) or REPO.parent / "shared" / "games" / "jericho"
)
"""Game files played when no recorded Jericho decisions exist."""
DEFAULTS = RetrievalConfig()
"""The method's retrieval settings: what the benchmark measures unless told otherwise."""
LLM_SECONDS = 0.7
"""The LLM part of a decision with the embedded model (``BENCHMARKS.md``)."""
TARGET_P50_MS = 5.0
TARGET_RECALL = 0.95
LSH_GRID = [(t, p) for p in (64, 128) for t in (0.3, 0.4, 0.5)]
LSH_MAX_CANDIDATES = [64, 128, 256, 512]
VECTOR_GRID = [32, 64, 128]
ACTIONS = ["north", "south", "east", "west", "look"]

Result = dict[str, Any]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--datasets", default="synthetic,jericho")
    p.add_argument("--queries", type=int, default=200, help="test queries per memory")
    p.add_argument("--exact-queries-1m", type=int, default=30, help="exact-scan subsample >=1M")
    p.add_argument("--tune-size", type=int, default=100000)
    p.add_argument("--tune-queries", type=int, default=100)
    p.add_argument("--tune-recall", type=float, default=0.98)
    p.add_argument("--minilm-size", type=int, default=10000, help="0 disables MiniLM")
    p.add_argument("--minilm-datasets", default="jericho")
    p.add_argument(
        "--similarity", default=DEFAULTS.similarity, choices=["text", "ngram", "mix", "key"]
    )
    p.add_argument("--threshold", type=float, default=DEFAULTS.threshold)
    p.add_argument("--k", type=int, default=DEFAULTS.k)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return p.parse_args()


def memories(names: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        if name == "synthetic":
            out[name] = SyntheticWorld(seed=0)
        elif name == "jericho":
            traces = jericho_traces(REPO / "benchmarks" / "results")
            if not traces:  # no recorded decisions here: play the shared games at random
                log.info("no recorded Jericho decisions: playing %s at random", JERICHO_GAMES)
                traces = played_jericho_traces(JERICHO_GAMES, episodes=4, steps=60, seed=0)
            out[name] = JerichoMemory(traces)
        else:
            raise SystemExit(f"unknown dataset {name}")
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def run_queries(mem: MemoryIndex, qs: list[State]) -> tuple[list[list[Neighbour]], list[float]]:
    """Neighbours and per-query seconds of the full memory part (retrieval + estimates)."""
    results, retrieval, decision = [], [], []
    values = ValueConfig()
    for q in qs:
        t0 = time.perf_counter()
        found = mem.neighbours(q)
        t1 = time.perf_counter()
        estimate(found, ACTIONS, values)
        t2 = time.perf_counter()
        results.append(found)
        retrieval.append(t1 - t0)
        decision.append(t2 - t0)
    return results, retrieval + decision


def recall_at_k(want: list[list[Neighbour]], got: list[list[Neighbour]]) -> float:
    scores = []
    for w, g in zip(want, got, strict=True):
        if w:
            ids = {(n.experience.episode_id, n.experience.step) for n in g}
            scores.append(
                sum((n.experience.episode_id, n.experience.step) in ids for n in w) / len(w)
            )
    return statistics.fmean(scores) if scores else 1.0


def summary(seconds: list[float], n: int) -> dict[str, float]:
    ret, dec = np.array(seconds[:n]) * 1e3, np.array(seconds[n:]) * 1e3
    return {
        "p50_ms": float(np.percentile(ret, 50)),
        "p99_ms": float(np.percentile(ret, 99)),
        "decision_p50_ms": float(np.percentile(dec, 50)),
    }


def evaluate(
    mem: MemoryIndex, cand: CandidateIndex | None, qs: list[State], want: list[list[Neighbour]]
) -> Result:
    mem.set_candidates(cand)
    mem.neighbours(qs[0])  # warm caches
    got, seconds = run_queries(mem, qs)
    out: Result = summary(seconds, len(qs))
    out["recall@k"] = recall_at_k(want, got)
    out["queries"] = len(qs)
    out["found"] = sum(1 for w in want if w) / len(want)
    if cand is not None:
        out["mean_candidates"] = float(np.mean([len(cand.query(q.text)) for q in qs[:100]]))
    return out


def build(cand: CandidateIndex, texts: list[str]) -> float:
    return timed(lambda: cand.rebuild(texts))[1]


def tune(
    mems: dict[str, tuple[MemoryIndex, list[State], list[list[Neighbour]]]],
    cfg: RetrievalConfig,
    goal: float,
) -> Result:
    """Choose LSH and vector settings on the tuning queries (never the test queries)."""
    grid: Result = {"lsh": [], "vector": []}
    for threshold, perms in LSH_GRID:
        rows: list[Result] = [
            {"lsh_threshold": threshold, "lsh_num_perm": perms, "lsh_max_candidates": most}
            for most in LSH_MAX_CANDIDATES
        ]
        for name, (mem, qs, want) in mems.items():
            cand = MinHashLSHIndex(cfg.ngram, threshold, perms)
            build_s = build(cand, mem.texts)
            for row in rows:
                cand.max_candidates = row["lsh_max_candidates"]
                res = evaluate(mem, cand, qs, want)
                row[name] = {k: res[k] for k in ("p50_ms", "recall@k", "mean_candidates")}
                row[f"{name}_build_s"] = build_s
        grid["lsh"] += rows
        log.info("tune lsh %s", rows)
    for count in VECTOR_GRID:
        row = {"vector_candidates": count}
        for name, (mem, qs, want) in mems.items():
            cand = VectorIndex(HashingEmbedder(cfg.ngram, cfg.embedding_dim), count)
            row[f"{name}_build_s"] = build(cand, mem.texts)
            res = evaluate(mem, cand, qs, want)
            row[name] = {k: res[k] for k in ("p50_ms", "recall@k", "mean_candidates")}
        grid["vector"].append(row)
        log.info("tune vector %s", row)
    grid["chosen"] = {**_choose(grid["lsh"], mems, goal), **_choose(grid["vector"], mems, goal)}
    return grid


def _choose(rows: list[Result], mems: dict[str, Any], goal: float) -> Result:
    def worst(row: Result, key: str) -> float:
        values = [row[name][key] for name in mems]
        return min(values) if key == "recall@k" else max(values)

    ok = [r for r in rows if worst(r, "recall@k") >= goal]
    best = (
        min(ok, key=lambda r: worst(r, "p50_ms"))
        if ok
        else max(rows, key=lambda r: worst(r, "recall@k"))
    )
    return {k: v for k, v in best.items() if not isinstance(v, dict) and not k.endswith("_s")}


def measure(
    name: str, gen: Any, size: int, args: argparse.Namespace, cfg: RetrievalConfig, chosen: Result
) -> Result:
    t0 = time.perf_counter()
    records = take(gen.episodes(seed=1), size)
    t1 = time.perf_counter()
    mem = MemoryIndex(cfg, records)
    gen_s, build_s = t1 - t0, time.perf_counter() - t1
    timing_qs = queries(gen.episodes(seed=1_000_003), args.queries, seed=7)
    qs = timing_qs[: args.exact_queries_1m] if size >= 1_000_000 else timing_qs
    row: Result = {"dataset": name, "records": len(mem), "texts": len(mem.texts), "indexes": {}}
    row["generate_s"], row["memory_build_s"] = gen_s, build_s
    mem.set_candidates(None)
    want, seconds = run_queries(mem, qs)
    row["indexes"]["exact"] = {
        **summary(seconds, len(qs)),
        "recall@k": 1.0,
        "queries": len(qs),
        "found": sum(1 for w in want if w) / len(qs),
        "build_s": build_s,
    }
    log.info("%s %d exact %s", name, size, row["indexes"]["exact"])
    lsh = MinHashLSHIndex(cfg.ngram, chosen["lsh_threshold"], chosen["lsh_num_perm"])
    lsh.max_candidates = chosen["lsh_max_candidates"]
    cands: dict[str, CandidateIndex] = {
        "lsh": lsh,
        "vector": VectorIndex(
            HashingEmbedder(cfg.ngram, cfg.embedding_dim), chosen["vector_candidates"]
        ),
    }
    if size == args.minilm_size and name in args.minilm_datasets.split(","):
        from jitrl.retrieval.minilm import MiniLMEmbedder

        cands["vector-minilm"] = VectorIndex(MiniLMEmbedder(), chosen["vector_candidates"])
    for kind, cand in cands.items():
        build_s = build(cand, mem.texts)
        res = {**evaluate(mem, cand, qs, want), "build_s": build_s}
        if len(timing_qs) > len(qs):  # time on every query; recall only where exact is known
            _, seconds = run_queries(mem, timing_qs)
            res.update(summary(seconds, len(timing_qs)), timed_queries=len(timing_qs))
        row["indexes"][kind] = res
        log.info("%s %d %s %s", name, size, kind, row["indexes"][kind])
        cands[kind] = ExactIndex(1)  # free the big index before building the next
        gc.collect()
    return row


def table(rows: list[Result]) -> str:
    head = ["memory", "records", "texts", "index", "build s", "p50 ms", "p99 ms"]
    head += ["decision p50 ms", "recall@k", "queries"]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|---:|---|" + "---:|" * 6]
    for r in rows:
        for kind, m in r["indexes"].items():
            cells = [r["dataset"], f"{r['records']:,}", f"{r['texts']:,}", kind]
            cells += [f"{m['build_s']:.1f}", f"{m['p50_ms']:.2f}", f"{m['p99_ms']:.2f}"]
            cells += [f"{m['decision_p50_ms']:.2f}", f"{m['recall@k']:.3f}", str(m["queries"])]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"synthetic": "-", "jericho": "--"}
    kinds = sorted({k for r in rows for k in r["indexes"]})
    for name in sorted({r["dataset"] for r in rows}):
        for i, kind in enumerate(kinds):
            pts = sorted(
                (r["records"], r["indexes"][kind])
                for r in rows
                if r["dataset"] == name and kind in r["indexes"]
            )
            if not pts:
                continue
            xs = [p[0] for p in pts]
            color = f"C{i}"
            ax1.plot(
                xs,
                [p[1]["p50_ms"] for p in pts],
                styles[name],
                marker="o",
                color=color,
                label=f"{kind} ({name})",
            )
            ax1.plot(
                xs, [p[1]["p99_ms"] for p in pts], styles[name], marker="x", color=color, alpha=0.35
            )
            ax2.plot(
                xs,
                [p[1]["recall@k"] for p in pts],
                styles[name],
                marker="o",
                color=color,
                label=f"{kind} ({name})",
            )
    ax1.axhline(TARGET_P50_MS, color="grey", lw=0.8, ls=":")
    ax1.set(
        xscale="log",
        yscale="log",
        xlabel="records",
        ylabel="ms per query (o p50, x p99)",
        title="retrieval latency",
    )
    ax2.axhline(TARGET_RECALL, color="grey", lw=0.8, ls=":")
    ax2.set(
        xscale="log",
        xlabel="records",
        ylabel="recall@k vs exact",
        title="recall of the exact top-k",
    )
    ax2.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    cfg = RetrievalConfig(k=args.k, threshold=args.threshold, similarity=args.similarity)
    gens = memories(args.datasets.split(","))
    tuning_mems = {}
    for name, gen in gens.items():
        mem = MemoryIndex(cfg, take(gen.episodes(seed=1), args.tune_size))
        qs = queries(gen.episodes(seed=2_000_003), args.tune_queries, seed=11)
        mem.set_candidates(None)
        tuning_mems[name] = (mem, qs, run_queries(mem, qs)[0])
    tuning = tune(tuning_mems, cfg, args.tune_recall)
    del tuning_mems
    gc.collect()
    log.info("chosen %s", tuning["chosen"])
    rows = []
    for size in sizes:
        for name, gen in gens.items():
            rows.append(measure(name, gen, size, args, cfg, tuning["chosen"]))
            gc.collect()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {
        "config": {
            "k": cfg.k,
            "threshold": cfg.threshold,
            "similarity": cfg.similarity,
            "ngram": cfg.ngram,
        },
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "llm_seconds_per_decision": LLM_SECONDS,
        "load_average_at_end": os.getloadavg(),
        "tuning": tuning,
        "rows": rows,
    }
    (args.out / "retrieval.json").write_text(json.dumps(result, indent=1))
    plot(rows, args.out / "retrieval.png")
    print(table(rows))
    print(f"\nchosen on tuning queries: {tuning['chosen']}")


if __name__ == "__main__":
    main()
