"""Reflective step rewards: at episode end the LLM reads the trajectory and scores every step.

Text games reward few steps, so most returns are 0 and memory cannot tell a useful move from a
wasted one. :func:`reflect` shows the finished trajectory (per step: environment reward, action,
state summary) to the language model, asks for ``{"scores": [...]}`` with one number per step in
``[score_min, score_max]``, and blends the scores into the step rewards.

Blend rule (:func:`blend`), with the score first mapped linearly to ``u_t`` in ``[-1, 1]`` (the
middle of the range is neutral)::

    r_t = r_env_t                              if r_env_t != 0
    r_t = weight * reward_scale * u_t          otherwise

The environment stays dominant: a step it rewarded (or punished) keeps that reward exactly, and
a shaped reward never exceeds ``weight * reward_scale`` in magnitude, which is below the smallest
real reward when ``reward_scale`` is set to it (``weight <= 1``). Revisit and terminal penalties
are applied afterwards by :func:`jitrl.method.returns.episode_returns`, as for raw rewards.

Fallback: if the answer of any chunk cannot be parsed, or gives a number of scores different
from the number of steps it was shown, or the model raises, the whole episode keeps its
environment rewards (``fallback=True`` with a ``reason``, logged as a warning); scores are never
filled in or partly used. Parsing is tolerant (:func:`jitrl.llm.structured.parse_numbers`):
strict JSON, an embedded ``{"scores": [...]}``, ``step i: x`` lines, an embedded array; scores
are then clamped to the range.

Long episodes are cut into chunks of at most ``max_chunk_steps`` steps and ``max_chunk_chars``
characters; each chunk is one model call, its steps numbered from 1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

from jitrl.llm.base import LanguageModel, Prompt
from jitrl.llm.structured import parse_numbers
from jitrl.method.config import ReflectionConfig

log = logging.getLogger(__name__)

SYSTEM = (
    "You review a finished episode of a text game. For every step, judge how much its action "
    "helped to reach the goal: {lo} means harmful or wasted, {hi} means clearly useful. {answer}"
)
JSON_ANSWER = 'Answer with JSON only: {"scores": [one number per step, in order]}.'
LINES_ANSWER = "Answer with one line per step, in order: 'Step i: score'."
JSON_PREFIX = '{"scores": ['
LINES_PREFIX = "Scores:"


@dataclass(frozen=True)
class TrajectoryStep:
    """One decision of the episode as the LLM sees it: the state summary and the action taken."""

    state: str
    action: str


@dataclass(frozen=True)
class ReflectionResult:
    """What :func:`reflect` produced.

    Attributes:
        scores: the LLM's clamped scores, one per step (empty on fallback).
        rewards: the blended step rewards (the environment rewards on fallback).
        fallback: the LLM scores were not used; ``rewards`` are the environment rewards.
        reason: why there was a fallback (``None`` otherwise).
        llm_calls: model calls made (one per chunk reached).
        prompt_chars: characters of all prompts sent (system, user and answer prefix).
    """

    scores: tuple[float, ...]
    rewards: tuple[float, ...]
    fallback: bool
    reason: str | None
    llm_calls: int
    prompt_chars: int


def unit_score(score: float, config: ReflectionConfig) -> float:
    """``score`` clamped to the configured range and mapped linearly to ``[-1, 1]``."""
    lo, hi = config.score_min, config.score_max
    clamped = min(max(score, lo), hi)
    return 2.0 * (clamped - lo) / (hi - lo) - 1.0


def blend(
    env_rewards: Sequence[float], llm_scores: Sequence[float], config: ReflectionConfig
) -> list[float]:
    """Step rewards from environment rewards and LLM scores (rule in the module docstring)."""
    if len(env_rewards) != len(llm_scores):
        raise ValueError(f"{len(env_rewards)} rewards but {len(llm_scores)} scores")
    scale = config.weight * config.reward_scale
    return [
        float(r) if r != 0.0 else scale * unit_score(s, config)
        for r, s in zip(env_rewards, llm_scores, strict=True)
    ]


def _step_line(step: TrajectoryStep, reward: float, config: ReflectionConfig) -> str:
    state = " ".join(step.state.split())
    line = f"reward {reward:g} | action: {' '.join(step.action.split())} | state: {state}"
    return line[: config.max_step_chars]


def chunk_lines(lines: Sequence[str], config: ReflectionConfig) -> list[list[str]]:
    """Consecutive step lines packed greedily under ``max_chunk_steps``/``max_chunk_chars``."""
    chunks: list[list[str]] = []
    size = 0
    for line in lines:
        cost = len(line) + 1
        full = not chunks or len(chunks[-1]) >= config.max_chunk_steps
        if full or size + cost > config.max_chunk_chars:
            chunks.append([])
            size = 0
        chunks[-1].append(line)
        size += cost
    return chunks


def build_prompt(
    lines: Sequence[str], part: tuple[int, int], outcome: str, config: ReflectionConfig
) -> Prompt:
    """The prompt for one chunk (``part`` = (index from 1, number of chunks))."""
    answer = JSON_ANSWER if config.request_json else LINES_ANSWER
    system = SYSTEM.format(lo=f"{config.score_min:g}", hi=f"{config.score_max:g}", answer=answer)
    head = [f"Episode outcome: {outcome}."] if outcome else []
    if part[1] > 1:
        head.append(f"Part {part[0]} of {part[1]} of the episode.")
    body = [f"Step {i}: {line}" for i, line in enumerate(lines, start=1)]
    tail = f"Give exactly {len(lines)} scores."
    prefix = JSON_PREFIX if config.request_json else LINES_PREFIX
    return Prompt(system=system, user="\n".join([*head, *body, tail]), answer_prefix=prefix)


def _score_chunk(
    model: LanguageModel,
    prompt: Prompt,
    n_steps: int,
    config: ReflectionConfig,
) -> tuple[list[float] | None, str]:
    """The chunk's scores, or ``None`` and the reason they cannot be used."""
    try:
        text = model.generate(prompt, config.max_tokens)
    except Exception as exc:  # an optional component must not lose the episode
        return None, f"model error: {type(exc).__name__}: {exc}"
    texts = [text]
    if config.request_json:  # the answer was opened with the prefix: put it back first
        texts = [prompt.answer_prefix + text, prompt.answer_prefix + text + "]}", text]
    found = next((s for s in map(parse_numbers, texts) if s is not None), None)
    if found is None:
        return None, f"no scores found in the answer {text[:80]!r}"
    if len(found) != n_steps:
        return None, f"expected {n_steps} scores, got {len(found)}"
    return found, ""


def _checked_rewards(steps: Sequence[TrajectoryStep], env_rewards: Sequence[float]) -> list[float]:
    if len(steps) != len(env_rewards):
        raise ValueError(f"{len(steps)} steps but {len(env_rewards)} rewards")
    rewards = [float(r) for r in env_rewards]
    if not all(math.isfinite(r) for r in rewards):
        raise ValueError("environment rewards must be finite")
    return rewards


def reflect(
    model: LanguageModel,
    steps: Sequence[TrajectoryStep],
    env_rewards: Sequence[float],
    config: ReflectionConfig | None = None,
    *,
    outcome: str = "",
) -> ReflectionResult:
    """Score every step of a finished episode with ``model`` and blend the scores in.

    Args:
        model: the language model that reads the trajectory (only ``generate`` is used).
        steps: the episode's decisions, in order.
        env_rewards: the environment's reward after each step (raw, before penalties).
        config: prompt, parsing and blend settings.
        outcome: a few words on how the episode ended (e.g. "died", "won, 10 points").

    Raises:
        ValueError: if ``steps`` and ``env_rewards`` differ in length or a reward is not finite.
    """
    cfg = config or ReflectionConfig()
    rewards = _checked_rewards(steps, env_rewards)
    if not steps or cfg.weight == 0.0:
        reason = None if not steps else "reflection disabled (weight 0)"
        return ReflectionResult((), tuple(rewards), bool(steps), reason, 0, 0)
    chunks = chunk_lines([_step_line(s, r, cfg) for s, r in zip(steps, rewards, strict=True)], cfg)
    scores: list[float] = []
    calls = chars = 0
    for part, lines in enumerate(chunks, start=1):
        prompt = build_prompt(lines, (part, len(chunks)), outcome, cfg)
        calls += 1
        chars += len(prompt.system) + len(prompt.user) + len(prompt.answer_prefix)
        found, reason = _score_chunk(model, prompt, len(lines), cfg)
        if found is None:
            reason = f"chunk {part}/{len(chunks)}: {reason}"
            log.warning("reflection fell back to environment rewards: %s", reason)
            return ReflectionResult((), tuple(rewards), True, reason, calls, chars)
        scores += found
    clamped = tuple(min(max(s, cfg.score_min), cfg.score_max) for s in scores)
    return ReflectionResult(clamped, tuple(blend(rewards, clamped, cfg)), False, None, calls, chars)


__all__ = [
    "ReflectionConfig",
    "ReflectionResult",
    "TrajectoryStep",
    "blend",
    "reflect",
    "unit_score",
]
