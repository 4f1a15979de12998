"""The episode loop, written once, and runs of many episodes with their output files.

A run writes into its output folder, one line per finished episode, flushed as it goes:

- ``episodes.jsonl``: score, steps, reward, return, wall time split into LLM, memory and env;
- ``decisions.jsonl``: per step, the state, candidates, base logits, neighbours, Q, V, A,
  corrected logits, probabilities and the chosen action;
- ``summary.json``: the run's settings and aggregate figures (rewritten after every episode).

Running again into the same folder continues the episode numbering, and the memory store carries
what was learnt, so a second run starts where the first stopped.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from jitrl.agents import Agent
from jitrl.envs.base import TextEnv
from jitrl.records import decision_record, summarise

log = logging.getLogger(__name__)

EpisodeCallback = Callable[["EpisodeResult"], None]
StepCallback = Callable[[int], None]


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode achieved and what it cost."""

    index: int
    episode_id: str
    task_id: str
    agent: str
    seed: int
    score: float
    steps: int
    reward: float
    won: bool
    lost: bool
    wall_seconds: float
    llm_seconds: float
    memory_seconds: float
    env_seconds: float
    prompt_tokens: int
    prefill_tokens: int


def _valid_hook(env: TextEnv) -> Callable[[str], bool] | None:
    hook = getattr(env, "is_valid", None)
    if hook is None:
        inner = getattr(env, "env", None)
        hook = getattr(inner, "is_valid", None)
    return hook if callable(hook) else None


def run_episode(
    env: TextEnv,
    agent: Agent,
    *,
    index: int,
    seed: int,
    episode_id: str,
    on_step: StepCallback | None = None,
) -> tuple[EpisodeResult, list[dict[str, Any]]]:
    """Play one episode; the agent learns from it at the end. Returns the result and its trace."""
    t_start = time.perf_counter()
    obs, info = env.reset(seed=seed)
    env_s = time.perf_counter() - t_start
    agent.begin(env.task_id, episode_id)
    valid = _valid_hook(env)
    trace: list[dict[str, Any]] = []
    llm_s = mem_s = total_reward = 0.0
    prompt_tokens = prefill_tokens = 0
    terminated = truncated = False
    while not (terminated or truncated) and info.get("candidates"):
        decision = agent.act(obs, info, valid)
        t0 = time.perf_counter()
        obs, reward, terminated, truncated, info = env.step(decision.action)
        env_s += time.perf_counter() - t0
        agent.reward(reward)
        total_reward += reward
        llm_s += decision.llm_seconds
        mem_s += decision.memory_seconds
        prompt_tokens += int(decision.llm_usage.get("prompt_tokens", 0))
        prefill_tokens += int(decision.llm_usage.get("prefill_tokens", 0))
        trace.append(decision_record(index, len(trace), decision, reward))
        if on_step is not None:
            on_step(1)
    failed = bool(info.get("lost", False))
    agent.end(failed=failed)
    result = EpisodeResult(
        index=index,
        episode_id=episode_id,
        task_id=env.task_id,
        agent=agent.name,
        seed=seed,
        score=float(info.get("score", total_reward)),
        steps=len(trace),
        reward=total_reward,
        won=bool(info.get("won", False)),
        lost=failed,
        wall_seconds=time.perf_counter() - t_start,
        llm_seconds=llm_s,
        memory_seconds=mem_s,
        env_seconds=env_s,
        prompt_tokens=prompt_tokens,
        prefill_tokens=prefill_tokens,
    )
    return result, trace


class RunWriter:
    """Appends episodes and decisions to a run folder; nothing finished is ever rewritten."""

    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.settings = settings
        self.episodes_path = out / "episodes.jsonl"
        self.decisions_path = out / "decisions.jsonl"
        self.results = [EpisodeResult(**row) for row in self._read_episodes()]

    def _read_episodes(self) -> Iterator[dict[str, Any]]:
        if not self.episodes_path.exists():
            return
        with self.episodes_path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{self.episodes_path}:{n}: not a JSON line ({err})") from err

    @property
    def next_index(self) -> int:
        """Index of the next episode (continues a previous run into the same folder)."""
        return len(self.results)

    def write(self, result: EpisodeResult, trace: list[dict[str, Any]]) -> None:
        """Append one finished episode and refresh the summary."""
        with self.decisions_path.open("a", encoding="utf-8") as fh:
            for row in trace:
                fh.write(json.dumps(row) + "\n")
        with self.episodes_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(result)) + "\n")
        self.results.append(result)
        summary = {"settings": self.settings, **summarise(self.results)}
        tmp = self.out / "summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        tmp.replace(self.out / "summary.json")


def run_episodes(
    env: TextEnv,
    agent: Agent,
    writer: RunWriter,
    *,
    episodes: int,
    seed: int,
    on_episode: EpisodeCallback | None = None,
    on_step: StepCallback | None = None,
) -> list[EpisodeResult]:
    """Play ``episodes`` more episodes, writing each as soon as it ends."""
    run_id = uuid.uuid4().hex[:8]
    done: list[EpisodeResult] = []
    for _ in range(episodes):
        index = writer.next_index
        result, trace = run_episode(
            env,
            agent,
            index=index,
            seed=seed + index,
            episode_id=f"{run_id}-{index}",
            on_step=on_step,
        )
        writer.write(result, trace)
        done.append(result)
        log.info("episode %d: score %.1f in %d steps", index, result.score, result.steps)
        if on_episode is not None:
            on_episode(result)
    return done
