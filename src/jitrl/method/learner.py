"""The library API: drop JitRL into any agent in a dozen lines.

>>> jit = JitRL("memory.sqlite")                       # doctest: +SKIP
>>> with jit.episode(task_id="my-task") as ep:          # doctest: +SKIP
...     d = ep.decide("kitchen, holding key", ["open door", "eat key"], logits=[-1.2, -3.4])
...     ep.reward(env_step(d.action))
...     ep.finish(failed=False)

``decide`` takes a state (text, optionally with an exact key), candidate actions and either their
base logits or a :class:`~jitrl.llm.base.Prompt` for the configured language model to score them.
It returns a :class:`~jitrl.method.types.Decision` with the corrected distribution and the chosen
action.
``finish`` turns the episode's rewards into discounted returns and stores the episode atomically.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType

import numpy as np

from jitrl.llm.base import LanguageModel, Prompt, ScoreResult
from jitrl.memory import open_store
from jitrl.memory.base import ExperienceStore
from jitrl.method.config import JitRLConfig
from jitrl.method.policy import corrected_logits, select
from jitrl.method.reflection import TrajectoryStep, reflect
from jitrl.method.returns import discounted_returns, episode_returns, revisits, step_rewards
from jitrl.method.types import Decision, Estimates, Experience, Neighbour, State
from jitrl.method.values import estimate, proposals
from jitrl.retrieval.index import MemoryIndex
from jitrl.retrieval.persist import open_index, save_index

log = logging.getLogger(__name__)

Validator = Callable[[str], bool]
PromptBuilder = Callable[[Sequence[Neighbour]], Prompt]
"""Builds the prompt once the neighbours are known (memory written into the prompt)."""


def _as_state(state: State | str, key: str | None) -> State:
    if isinstance(state, State):
        return state if key is None else State(state.text, key)
    if not isinstance(state, str):
        raise TypeError(f"state must be a str or State, got {type(state).__name__}")
    return State(state, key)


def _clean_candidates(candidates: Sequence[str]) -> list[str]:
    if isinstance(candidates, str):
        raise TypeError("candidates must be a sequence of strings, not one string")
    out: list[str] = []
    for c in candidates:
        if not isinstance(c, str) or not c.strip():
            raise ValueError(f"every candidate must be a non-empty string, got {c!r}")
        if c not in out:
            out.append(c)
    if not out:
        raise ValueError("decide() needs at least one candidate action")
    return out


class JitRL:
    """Memory plus the closed-form policy correction.

    Args:
        memory: a store, a path/URL for :func:`jitrl.memory.open_store`, or ``None`` for no memory
            (the frozen LLM: every advantage is 0 and nothing is stored).
        config: the method's settings.
        model: language model used when ``decide`` gets a prompt instead of logits.
        seed: seed of the generator used for sampling.
        episodes: load only these stored episodes, in this order (``None``: all of them).
        shared: this learner is one of several workers of one run (:mod:`jitrl.running.rounds`).
            ``Episode.finish`` then returns the episode's records without storing or indexing
            them: the coordinator stores every worker's episodes in episode order, and the index
            follows the store through :meth:`sync` only, so workers given the same episode list
            retrieve from the same memory.
    """

    def __init__(
        self,
        memory: ExperienceStore | str | Path | None,
        config: JitRLConfig | None = None,
        *,
        model: LanguageModel | None = None,
        seed: int = 0,
        episodes: Sequence[str] | None = None,
        shared: bool = False,
    ) -> None:
        self.config = config or JitRLConfig()
        self.model = model
        self.shared = shared
        self.store = open_store(memory) if isinstance(memory, (str, Path)) else memory
        if self.store is None:
            self.index = MemoryIndex(self.config.retrieval, ())
        elif episodes is not None:
            self.index = MemoryIndex(self.config.retrieval, self.store.experiences_of(episodes))
        else:
            self.index, status = open_index(self.config.retrieval, self.store)
            log.info("memory index (%s): %s", self.config.retrieval.index, status)
        # the current episode's few steps are searched exactly, and never excluded as own task
        self._working_config = replace(
            self.config.retrieval,
            index="exact",
            capacity=None,
            max_per_state_action=None,
            exclude_own_task=False,
        )
        self.rng = np.random.default_rng(seed)
        if self.store is not None:
            log.info("memory: %d experiences loaded", len(self.index))

    def sync(self, episode_ids: Sequence[str] | None = None) -> int:
        """Index stored episodes that the index lacks (written by other processes).

        Args:
            episode_ids: the episodes to have, in the order to add them (``None``: every
                stored episode, in storage order).

        Returns:
            The number of records added.
        """
        if self.store is None:
            return 0
        ids = self.store.episode_ids() if episode_ids is None else episode_ids
        missing = [e for e in ids if not self.index.has_episode(e)]
        records = self.store.experiences_of(missing) if missing else []
        self.index.add(records)
        return len(records)

    def reseed(self, seed: int) -> None:
        """Restart the sampling generator (parallel runs seed every episode)."""
        self.rng = np.random.default_rng(seed)

    @property
    def uses_memory(self) -> bool:
        """False for the frozen-LLM configuration (no store)."""
        return self.store is not None

    def episode(
        self, task_id: str = "", episode_id: str | None = None, *, learn: bool = True
    ) -> Episode:
        """Start recording an episode; decisions and rewards go through the returned object.

        With ``learn=False`` (a test episode) memory is frozen: the episode still uses its own
        steps (working memory), but ``finish`` stores nothing.
        """
        return Episode(self, task_id, episode_id or uuid.uuid4().hex, learn=learn)

    def decide(
        self,
        state: State | str,
        candidates: Sequence[str],
        logits: Sequence[float] | None = None,
        *,
        key: str | None = None,
        prompt: Prompt | PromptBuilder | None = None,
        valid: Validator | None = None,
        working: Sequence[Experience] = (),
        task_id: str | None = None,
    ) -> Decision:
        """Correct the base distribution over ``candidates`` with memory and choose an action.

        Args:
            state: abstracted state text (or a :class:`State`).
            candidates: the actions available now.
            logits: base logits ``z(a|s)``, one per candidate; omit to let ``model`` score them.
            key: exact state key (equal keys count as identical states).
            prompt: prompt for the model when ``logits`` is omitted, or a function that builds
                it from the retrieved neighbours (in-context memory, the ``icl`` baseline).
            valid: tells whether a memory-proposed action (not in ``candidates``) is valid now;
                without it memory proposes nothing.
            working: the current episode's earlier steps with their returns so far (see
                :class:`Episode`); retrieved alongside the stored memory.
            task_id: the current task (for ``RetrievalConfig.exclude_own_task``).
        """
        st = _as_state(state, key)
        cands = _clean_candidates(candidates)
        t0 = time.perf_counter()
        neighbours = self._neighbours(st, working, task_id) if self.uses_memory else []
        extra = self._proposals(neighbours, cands, valid)
        t_mem = time.perf_counter() - t0
        if callable(prompt):
            prompt = prompt(neighbours)
        base, usage, llm_s = self._base_logits(cands, extra, logits, prompt)
        t1 = time.perf_counter()
        all_cands = cands + extra
        est = estimate(neighbours, all_cands, self.config.values) if self.uses_memory else None
        correct = est is not None and self.config.policy.correct
        adv = est.advantages if correct and est is not None else (0.0,) * len(all_cands)
        z = corrected_logits(base, adv, self.config.policy.beta)
        idx, probs = select(z, self.config.policy, self.rng)
        t_mem += time.perf_counter() - t1
        return Decision(
            state=st,
            candidates=tuple(all_cands),
            base_logits=tuple(float(x) for x in base),
            neighbours=tuple(neighbours),
            estimates=est,
            logits=tuple(float(x) for x in z),
            probs=tuple(float(p) for p in probs),
            action=all_cands[idx],
            proposed=tuple(extra),
            llm_seconds=llm_s,
            memory_seconds=t_mem,
            llm_usage=usage,
        )

    def _neighbours(
        self, state: State, working: Sequence[Experience], task_id: str | None
    ) -> list[Neighbour]:
        found = self.index.neighbours(state, task_id)
        if not working or not self.config.retrieval.working_memory:
            return found
        recent = MemoryIndex(self._working_config, working).neighbours(state)
        # the current episode is the most recent experience: it goes first among ties
        merged = sorted(recent + found, key=lambda nb: -nb.similarity)
        return merged[: self.config.retrieval.k]

    def _proposals(
        self, neighbours: list[Neighbour], cands: list[str], valid: Validator | None
    ) -> list[str]:
        if not (self.config.policy.propose and valid and neighbours):
            return []
        return [a for a in proposals(neighbours, cands, self.config.values) if valid(a)]

    def _base_logits(
        self,
        cands: list[str],
        extra: list[str],
        logits: Sequence[float] | None,
        prompt: Prompt | None,
    ) -> tuple[list[float], dict[str, float], float]:
        if logits is not None:
            base = [float(x) for x in logits]
            if len(base) != len(cands):
                raise ValueError(f"{len(cands)} candidates but {len(base)} logits")
            if not all(math.isfinite(x) for x in base):
                raise ValueError("base logits must be finite")
            floor = self.config.policy.floor_logit
            base += [min(base) if floor is None else floor] * len(extra)
            return base, {}, 0.0
        if prompt is None or self.model is None:
            raise ValueError("decide() needs logits, or a prompt and a JitRL(model=...) to score")
        res: ScoreResult = self.model.score(prompt, cands + extra)
        usage = {
            "calls": float(res.calls),
            "prompt_tokens": float(res.prompt_tokens),
            "billed_tokens": float(res.billed_tokens),
            "completion_tokens": float(res.completion_tokens),
            "prefill_tokens": float(res.prefill_tokens),
            "candidate_tokens": float(sum(res.token_counts)),
            "prefill_seconds": res.prefill_seconds,
            "scoring_seconds": res.scoring_seconds,
        }
        return list(res.logits(self.config.policy.length_normalise)), usage, res.seconds

    def close(self) -> None:
        """Save the candidate index beside the store (LSH/vector only) and close the store."""
        if self.store is not None:
            try:
                save_index(self.index, store=self.store)
            finally:
                self.store.close()


class Episode:
    """Records one episode's decisions and rewards; ``finish`` stores it whole."""

    def __init__(self, jit: JitRL, task_id: str, episode_id: str, *, learn: bool = True) -> None:
        self.jit = jit
        self.task_id = task_id
        self.episode_id = episode_id
        self.learn = learn
        """Store the episode when it finishes (``False``: memory is frozen)."""
        self.decisions: list[Decision] = []
        self.rewards: list[float] = []
        self.finished = False

    def decide(
        self,
        state: State | str,
        candidates: Sequence[str],
        logits: Sequence[float] | None = None,
        *,
        key: str | None = None,
        prompt: Prompt | PromptBuilder | None = None,
        valid: Validator | None = None,
    ) -> Decision:
        """Like :meth:`JitRL.decide`, and remembers the decision for this episode."""
        if self.finished:
            raise RuntimeError("this episode is finished")
        if len(self.rewards) < len(self.decisions):
            self.rewards.append(0.0)  # the previous decision got no explicit reward
        st = _as_state(state, key)
        working = self._working(st) if self.jit.config.retrieval.working_memory else []
        decision = self.jit.decide(
            st,
            candidates,
            logits,
            prompt=prompt,
            valid=valid,
            working=working,
            task_id=self.task_id,
        )
        self.decisions.append(decision)
        return decision

    def _working(self, current: State) -> list[Experience]:
        """This episode's steps so far, valued by the returns observed up to now."""
        if not self.decisions or not self.jit.uses_memory:
            return []
        states = [d.state.identity for d in self.decisions] + [current.identity]
        shaped = step_rewards(
            self.rewards,
            failed=False,
            config=self.jit.config.returns,
            revisited=revisits(states)[: len(self.decisions)],
        )
        rets = discounted_returns(shaped, self.jit.config.returns.gamma)
        return [
            Experience(d.state, d.action, g, self.episode_id, t, self.task_id, r)
            for t, (d, r, g) in enumerate(zip(self.decisions, shaped, rets, strict=False))
        ]

    def reward(self, reward: float) -> None:
        """The reward that followed the latest decision (call at most once per decision)."""
        if len(self.rewards) >= len(self.decisions):
            raise RuntimeError("reward() must follow a decide()")
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite, got {reward}")
        self.rewards.append(float(reward))

    def finish(self, *, failed: bool = False) -> list[Experience]:
        """Compute returns and store the episode atomically; returns the stored experiences
        (none when memory is frozen)."""
        if self.finished:
            raise RuntimeError("this episode is finished")
        self.finished = True
        rewards = self.rewards + [0.0] * (len(self.decisions) - len(self.rewards))
        if not self.decisions or not self.learn:
            return []
        rewards = self._reflect(rewards, failed)
        cfg = self.jit.config.returns
        states = [d.state.identity for d in self.decisions]
        shaped, rets = episode_returns(rewards, failed=failed, config=cfg, states=states)
        now = time.time()
        exps = [
            Experience(d.state, d.action, g, self.episode_id, t, self.task_id, r, now)
            for t, (d, r, g) in enumerate(zip(self.decisions, shaped, rets, strict=False))
        ]
        if self.jit.store is not None and not self.jit.shared:
            self.jit.store.add_episode(exps)
            self.jit.index.add(exps)
        return exps

    def _reflect(self, rewards: list[float], failed: bool) -> list[float]:
        """Blend the model's step scores into the rewards when reflection is configured."""
        cfg = self.jit.config.reflection
        if cfg.weight == 0.0 or self.jit.model is None or not self.jit.uses_memory:
            return rewards
        steps = [TrajectoryStep(d.state.text, d.action) for d in self.decisions]
        res = reflect(self.jit.model, steps, rewards, cfg, outcome="lost" if failed else "")
        return list(res.rewards)  # on a fallback: the environment's rewards (logged there)

    def __enter__(self) -> Episode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.finished:
            return
        if exc_type is None:
            self.finish()
            return
        log.warning("episode %s abandoned after an error; nothing stored", self.episode_id)
        self.finished = True


__all__ = ["Episode", "Estimates", "JitRL"]
