"""Logit modes of the OpenAI-compatible backend against the in-process exact reference.

Starts ``python -m llama_cpp.server`` (embedded SmolLM2, ``--logits_all true``, one thread;
stopped at the end, also on error or SIGTERM) and, on one game: (1) collects decisions from a
static episode of the in-process ``llamacpp`` backend (actions sampled, so states vary); (2)
scores them with every mode through :func:`jitrl.llm.load_model`: cost per decision (from
``ScoreResult``) and fidelity of the agent's base distribution to the reference's (top-1
agreement, KL(ref || mode), Spearman); exact mode on an evenly spaced subset, it costs minutes a
decision here; (3) times one echoed request per ``logprobs`` value; (4) plays the ``jitrl`` agent
(``make_agent`` + ``run_episode``, score-cached, fresh memory) with each mode's base logits.
Writes ``logit_modes.json``/``.png`` to ``--out`` and the generated part of BENCHMARKS.md's
"Logit modes" section. The fidelity measures and the server live in ``logit_modes_lib.py``.

    python benchmarks/logit_modes.py --decisions 20 --exact-decisions 8 --episodes 5 --max-steps 15
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from bench_md import replace_block
from jitrl.agents import AgentContext, make_agent
from jitrl.envs.factory import make_env
from jitrl.llm import LanguageModel, Prompt, ScoreResult, load_model
from jitrl.llm.cache import CachedModel
from jitrl.llm.llamacpp import LlamaCppConfig, LlamaCppModel, embedded_model_path
from jitrl.llm.local_server import SERVED_NAME, local_server
from jitrl.llm.openai import ApiClient, ExactScorer, OpenAIConfig
from jitrl.memory import open_store
from jitrl.method.config import JitRLConfig, PolicyConfig
from jitrl.running.loop import run_episode
from logit_modes_lib import fidelity

log = logging.getLogger("logit_modes")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results"
REQUEST_TIMEOUT_S = 1800.0
REFERENCE = "llamacpp"
MODES = {
    "labelled": "mode=labelled",
    "labelled-p1": "mode=labelled&permutations=1",
    "verbal": "mode=verbal",
    "exact": "mode=exact",
}
"""Mode name -> query of its ``openai:MODEL@URL?...`` spec (defaults otherwise)."""
ECHO_PROBE = (0, 1, 20, None)
"""``logprobs`` values of the echo cost probe (None: no log-probs, the floor)."""
SECTION = "## Logit modes of the OpenAI-compatible backend (issue 5)"
MARK = "LOGIT_MODES"
"""Name of this benchmark's block in BENCHMARKS.md."""


@dataclass(frozen=True)
class Sample:
    """One decision: prompt, candidates, and the reference's scores and wall time."""

    prompt: Prompt
    candidates: tuple[str, ...]
    reference: ScoreResult
    seconds: float


class Recorder:
    """A LanguageModel that scores with ``model`` and keeps every new (prompt, candidates)."""

    def __init__(self, model: LanguageModel) -> None:
        self.model, self.name = model, model.name
        self.samples: dict[tuple[Prompt, tuple[str, ...]], Sample] = {}

    def score(self, prompt: Prompt, candidates: Sequence[str]) -> ScoreResult:
        start = time.perf_counter()
        result = self.model.score(prompt, candidates)
        key = (prompt, tuple(candidates))
        if key not in self.samples:
            self.samples[key] = Sample(prompt, key[1], result, time.perf_counter() - start)
        return result

    def generate(self, prompt: Prompt, max_tokens: int = 32) -> str:
        return self.model.generate(prompt, max_tokens)

    def close(self) -> None:  # the wrapped model belongs to the caller
        pass


def spec_for(mode: str, url: str) -> str:
    """The model spec of ``mode`` on the server (long timeout: exact requests take minutes)."""
    return f"openai:{SERVED_NAME}@{url}?{MODES[mode]}&timeout={REQUEST_TIMEOUT_S:.0f}"


# ---- measurements ----
def collect(env_spec: str, reference: LanguageModel, count: int, seed: int) -> list[Sample]:
    """``count`` distinct decisions from static episodes of the reference (sampled actions)."""
    recorder = Recorder(reference)
    config = JitRLConfig(policy=PolicyConfig(selection="sample"))
    agent = make_agent("static", AgentContext(model=recorder, store=None, config=config, seed=seed))
    env = make_env(env_spec, max_steps=count, seed=seed)
    try:
        for episode in range(count):
            if len(recorder.samples) >= count:
                break
            run_episode(env, agent, index=episode, seed=seed + episode, episode_id=f"c{episode}")
    finally:
        env.close()
        agent.close()
    return list(recorder.samples.values())[:count]


def evenly(samples: list[Sample], count: int) -> list[tuple[int, Sample]]:
    """``count`` samples spread evenly over the list, with their indices."""
    count = min(count, len(samples))
    return [(i * len(samples) // count, samples[i * len(samples) // count]) for i in range(count)]


def score_mode(model: LanguageModel, picked: list[tuple[int, Sample]]) -> list[dict[str, Any]]:
    """Score every picked decision with ``model``: its cost and its fidelity to the reference."""
    rows = []
    for index, sample in picked:
        start = time.perf_counter()
        result = model.score(sample.prompt, sample.candidates)
        rows.append(cost_row(index, result, time.perf_counter() - start, sample))
        r = rows[-1]
        log.info("%s #%d: %.2f s, %d calls, top-1 %.2f, KL %.3f", model.name, index,
                 r["seconds"], r["calls"], r["top1"], r["kl"])  # fmt: skip
    return rows


def cost_row(index: int, result: ScoreResult, seconds: float, sample: Sample) -> dict[str, Any]:
    """One decision's record."""
    return {
        "decision": index, "candidates": len(sample.candidates), "seconds": seconds,
        "actions": list(sample.candidates),
        "calls": result.calls, "billed_tokens": result.billed_tokens,
        "completion_tokens": result.completion_tokens, "prompt_tokens": result.prompt_tokens,
        "logprobs": list(result.logprobs), "token_counts": list(result.token_counts),
        **fidelity(sample.reference, result),
    }  # fmt: skip


def summarise(rows: list[dict[str, Any]], reference_median: float) -> dict[str, Any]:
    """Medians, p90 and means over a mode's decisions."""
    seconds = [r["seconds"] for r in rows]

    def mean(key: str) -> float:
        return statistics.fmean(float(r[key]) for r in rows)

    return {
        "decisions": len(rows),
        "median_seconds": statistics.median(seconds),
        "p90_seconds": float(np.percentile(seconds, 90)),
        "median_over_reference": statistics.median(seconds) / reference_median,
        **{k: mean(k) for k in ("calls", "billed_tokens", "completion_tokens", "candidates")},
        **{k: mean(k) for k in ("top1", "kl", "kl_summed_ref", "spearman", "top_prob", "uniform")},
        "max_abs_logprob_diff": max(r["max_abs_logprob_diff"] for r in rows),
    }


def probe_echo(url: str, sample: Sample, rounds: int) -> dict[str, float]:
    """Median seconds of one echoed exact-mode request per ``logprobs`` value over ``rounds``
    interleaved rounds, after a warm-up that leaves the text in the server's prefix cache."""
    config = OpenAIConfig(model=SERVED_NAME, base_url=url, timeout=REQUEST_TIMEOUT_S)
    client = ApiClient(config)
    render = ExactScorer(client, config).render(sample.prompt)
    text = f"{render} {sample.candidates[0]}{config.end_of_turn}"
    seconds: dict[str, list[float]] = {f"logprobs={k}": [] for k in ECHO_PROBE}
    try:
        response = client.completion(prompt=text, echo=True, max_tokens=1)
        for _ in range(rounds):
            for logprobs in ECHO_PROBE:
                extra = {} if logprobs is None else {"logprobs": logprobs}
                start = time.perf_counter()
                client.completion(prompt=text, echo=True, max_tokens=1, **extra)
                seconds[f"logprobs={logprobs}"].append(time.perf_counter() - start)
    finally:
        client.close()
    timings = {k: statistics.median(v) for k, v in seconds.items()}
    log.info("echo probe (medians of %d): %s", rounds, timings)
    return {**timings, "prompt_tokens": float(response.usage.prompt_tokens)}


def play(
    env_spec: str, model: LanguageModel, args: argparse.Namespace, store: Path
) -> list[dict[str, Any]]:
    """The jitrl agent for ``args.episodes`` episodes with ``model``'s scores (score-cached)."""
    context = AgentContext(
        model=CachedModel(model), store=open_store(store), config=JitRLConfig(), seed=args.seed
    )
    agent = make_agent("jitrl", context)
    env = make_env(env_spec, max_steps=args.max_steps, seed=args.seed)
    episodes = []
    try:
        for index in range(args.episodes):
            result, _ = run_episode(
                env, agent, index=index, seed=args.seed + index, episode_id=f"{store.stem}-{index}"
            )
            episodes.append(asdict(result))
            log.info("%s episode %d: score %.1f", model.name, index, result.score)
    finally:
        env.close()
        agent.close()
    return episodes


def episode_summary(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Scores and per-step cost of a mode's episodes."""
    steps = max(sum(e["steps"] for e in episodes), 1)
    return {
        "scores": [e["score"] for e in episodes],
        "mean_score": statistics.fmean(e["score"] for e in episodes),
        "steps": steps,
        **{
            f"{key}_per_step": sum(e[key] for e in episodes) / steps
            for key in ("llm_seconds", "llm_calls", "billed_tokens", "completion_tokens")
        },
    }


# ---- output ----
def plot(result: dict[str, Any], path: Path) -> None:
    """Cost per decision, disagreement with the reference, and episode scores, per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["modes"])
    summaries = [result["modes"][n]["summary"] for n in names]
    fig, (cost, fid, score) = plt.subplots(1, 3, figsize=(15.0, 4.5))
    medians = [s["median_seconds"] for s in summaries]
    above = [s["p90_seconds"] - s["median_seconds"] for s in summaries]
    cost.bar(names, medians, yerr=[[0] * len(names), above], capsize=4)
    cost.set_yscale("log")
    cost.set_ylabel("seconds per decision (median, bar to p90)")
    width = 0.4
    x = np.arange(len(names))
    fid.bar(x - width / 2, [s["kl"] for s in summaries], width, label="KL(ref || mode), nats")
    fid.bar(x + width / 2, [1 - s["top1"] for s in summaries], width, label="1 - top-1 agreement")
    fid.set_xticks(x, names)
    fid.legend(fontsize="small")
    for name, data in result["episodes"].items():
        score.plot(range(1, len(data["scores"]) + 1), data["scores"], "o-", label=name)
    score.set_xticks(
        range(1, 1 + max((len(e["scores"]) for e in result["episodes"].values()), default=0))
    )
    score.set_xlabel("episode")
    score.set_ylabel("score")
    score.legend(fontsize="small")
    fig.suptitle(f"Logit modes on {result['env']}: cost, fidelity to the exact reference, score")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def section(result: dict[str, Any], rel: Path) -> str:
    """The generated part of the BENCHMARKS.md section."""
    head = (
        "| mode | decisions | s/decision median (p90) | × reference | calls | billed input tokens "
        "| completion tokens | top-1 agreement | KL(ref ‖ mode) | Spearman | top prob | uniform |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [head]
    for name, data in result["modes"].items():
        s = data["summary"]
        rows.append(
            f"| {name} | {s['decisions']} | {s['median_seconds']:.2f} ({s['p90_seconds']:.2f}) "
            f"| {s['median_over_reference']:.1f} | {s['calls']:.1f} | {s['billed_tokens']:.0f} "
            f"| {s['completion_tokens']:.1f} | {s['top1']:.2f} | {max(s['kl'], 0.0):.3f} "
            f"| {s['spearman']:.2f} | {s['top_prob']:.2f} | {s['uniform']:.0%} |"
        )
    rows += ["", "| base logits | episode scores | mean | LLM s/step | calls/step | billed/step |"]
    rows.append("|---|---|---:|---:|---:|---:|")
    for name, e in result["episodes"].items():
        rows.append(
            f"| {name} | {' '.join(f'{x:g}' for x in e['scores'])} | {e['mean_score']:.2f} "
            f"| {e['llm_seconds_per_step']:.2f} | {e['llm_calls_per_step']:.2f} "
            f"| {e['billed_tokens_per_step']:.0f} |"
        )
    if exact := result["modes"].get("exact"):
        rows.append(
            f"\nExact mode against the in-process reference: largest |Δ log-prob| "
            f"{exact['summary']['max_abs_logprob_diff']:.1e} nats over "
            f"{exact['summary']['decisions']} decisions (every candidate)."
        )
    if probe := dict(result["echo_probe"]):
        tokens = probe.pop("prompt_tokens")
        timings = ", ".join(f"`{k}` {v:.1f} s" for k, v in probe.items())
        rows.append(f"\nOne echoed request of {tokens:.0f} tokens, all cached (median): {timings}.")
    return "\n".join(
        [f"```bash\n{result['command']}\n```\n", *rows, "",
         f"![logit modes]({rel}/logit_modes.png)", "",
         f"Results: `{rel}/logit_modes.json`; this invocation ran "
         f"{result['wall_seconds'] / 60:.0f} min (load average {result['load_before'][0]:.1f} "
         f"before, {result['load_after'][0]:.1f} after)."]
    )  # fmt: skip


def measure(args: argparse.Namespace, url: str, reference: LlamaCppModel) -> dict[str, Any]:
    """Every phase of the benchmark against the running server."""
    samples = collect(args.env, reference, args.decisions, args.seed)
    ref_rows = [cost_row(i, s.reference, s.seconds, s) for i, s in enumerate(samples)]
    ref_median = statistics.median(r["seconds"] for r in ref_rows)
    modes = {REFERENCE: {"summary": summarise(ref_rows, ref_median), "decisions": ref_rows}}
    for mode in args.modes.split(","):
        picked = evenly(samples, args.exact_decisions if mode == "exact" else len(samples))
        start = time.perf_counter()
        model = load_model(spec_for(mode, url))
        connect = time.perf_counter() - start
        try:
            rows = score_mode(model, picked)
        finally:
            model.close()
        summary = {**summarise(rows, ref_median), "connect_seconds": connect}
        modes[mode] = {"summary": summary, "decisions": rows}
    probe = probe_echo(url, samples[0], args.probe_rounds) if args.probe_rounds else {}
    episodes: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for mode in args.score_modes.split(","):
            model = reference if mode == REFERENCE else load_model(spec_for(mode, url))
            try:
                rows = play(args.env, model, args, Path(folder) / f"{mode}.sqlite")
            finally:
                if mode != REFERENCE:
                    model.close()
            episodes[mode] = {**episode_summary(rows), "episodes": rows}
    return {"modes": modes, "echo_probe": probe, "episodes": episodes}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--env", default="textworld-simple:1", help="environment spec")
    parser.add_argument("--decisions", type=int, default=20, help="decisions scored per mode")
    parser.add_argument("--exact-decisions", type=int, default=8, help="of those, for exact")
    parser.add_argument("--modes", default=",".join(MODES), help="server modes to score")
    parser.add_argument("--score-modes", default=f"{REFERENCE},labelled,verbal",
                        help="base logits of the episodes (exact: minutes a decision)")  # fmt: skip
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--max-steps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads (both sides)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--probe-rounds", type=int, default=2, help="echo probe rounds; 0: none")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--no-benchmarks-md", dest="write_md", action="store_false")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, _frame: object) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds the finally blocks: the server is stopped


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    started, load_before = time.time(), os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as folder,
        local_server(threads=args.threads, log_path=Path(folder) / "server.log") as url,
        LlamaCppModel(LlamaCppConfig(n_threads=args.threads)) as reference,
    ):
        measured = measure(args, url, reference)
    command = " ".join(["python benchmarks/logit_modes.py", *(argv or sys.argv[1:])])
    result = {
        "command": command, "env": args.env, "model": str(embedded_model_path().name),
        "threads": args.threads, "cpu_count": os.cpu_count(), "load_before": load_before,
        "load_after": os.getloadavg(), "wall_seconds": time.time() - started, **measured,
    }  # fmt: skip
    (args.out / "logit_modes.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "logit_modes.png")
    if args.write_md:
        replace_block(MARK, section(result, args.out.resolve().relative_to(REPO)), SECTION)
    log.info("done in %.1f min", result["wall_seconds"] / 60)


if __name__ == "__main__":
    main()
