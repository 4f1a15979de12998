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
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from jitrl.llm.base import LanguageModel, Prompt, ScoreResult
from jitrl.memory import open_store
from jitrl.memory.base import ExperienceStore
from jitrl.method.calibration import PriorCalibration, sample_of
from jitrl.method.config import JitRLConfig, ScopeConfig
from jitrl.method.episode import Episode, PromptBuilder, Validator, as_state
from jitrl.method.inputs import checked_logits, clean_candidates
from jitrl.method.pace import Lead, PaceBandit
from jitrl.method.policy import corrected_logits, select
from jitrl.method.pruning import prune
from jitrl.method.returns import RewardUnits
from jitrl.method.types import (
    DEFAULT_NAMESPACE,
    Decision,
    Estimates,
    Experience,
    Neighbour,
    State,
)
from jitrl.method.values import estimate, exploration, proposals
from jitrl.retrieval.factory import resolve_auto
from jitrl.retrieval.index import MemoryIndex
from jitrl.retrieval.persist import index_folder, open_index, save_index

log = logging.getLogger(__name__)

NEEDS_SCORES = "decide() needs logits, or a prompt and a JitRL(model=...) to score"


@dataclass(frozen=True)
class _View:
    """What memory says about one decision, before the model scores."""

    neighbours: list[Neighbour]
    candidates: list[str]
    """The candidates to score: the environment's and memory's, after pruning."""
    proposed: list[str]
    estimates: Estimates | None
    logits: list[float] | None
    """The caller's logits for ``candidates`` (``None``: the model scores)."""


def _decision(
    state: State,
    view: _View,
    base: Sequence[float],
    chosen: tuple[int, Sequence[float], Sequence[float]],
    timing: tuple[float, float, dict[str, float]],
    beta: float,
    weight: float,
    lead: Lead,
) -> Decision:
    """The record of one decision; ``chosen``: the action's index, corrected logits, probs."""
    index, logits, probs = chosen
    llm_seconds, memory_seconds, usage = timing
    return Decision(
        state=state,
        candidates=tuple(view.candidates),
        base_logits=tuple(float(x) for x in base),
        neighbours=tuple(view.neighbours),
        estimates=view.estimates,
        logits=tuple(float(x) for x in logits),
        probs=tuple(float(p) for p in probs),
        action=view.candidates[index],
        proposed=tuple(view.proposed),
        llm_seconds=llm_seconds,
        memory_seconds=memory_seconds,
        llm_usage=usage,
        beta=beta,
        prior_weight=weight,
        lead=lead,
    )


def _index_folder(store: ExperienceStore | None, scope: ScopeConfig, kind: str) -> Path | None:
    """Where the candidate index of this learner's namespaces is saved (one per set of them)."""
    readable = scope.readable
    named = None if readable == {DEFAULT_NAMESPACE} else ",".join(sorted(readable))
    return None if store is None else index_folder(store, kind, named)


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
        self.namespace = self.config.scope.namespace
        """The namespace this learner's episodes are stored in."""
        self._readable = self.config.scope.readable
        retrieval = self.config.retrieval
        if self.store is not None:  # a large memory starts with the index it will need
            retrieval = resolve_auto(retrieval, len(self.store))
        self._index_folder = _index_folder(self.store, self.config.scope, retrieval.index)
        if self.store is None:
            self.index = MemoryIndex(self.config.retrieval, ())
        elif episodes is not None:
            self.index = MemoryIndex(retrieval, self._records_of(episodes))
        else:
            records = self.store.in_namespaces(self._readable)
            self.index, status = open_index(retrieval, records, self._index_folder)
            log.info("memory index (%s): %s", retrieval.index, status)
        # the current episode's few steps are searched exactly, and never excluded as own task
        self._working_config = replace(
            self.config.retrieval,
            index="exact",
            capacity=None,
            max_per_state_action=None,
            exclude_own_task=False,
        )
        self.rng = np.random.default_rng(seed)
        self.calibration = PriorCalibration(self.config.policy)
        """The model's weight per task, fitted from memory's evidence."""
        self.pace = PaceBandit(self.config.policy)
        """Who leads each episode of a task, the model or memory alone."""
        if self.pace.active and not self.paced:
            log.info("pace bandit off here (no memory, a parallel worker or no advantages)")
        self.reward_units = RewardUnits(self.config.returns)
        """The size of a typical reward per task, the unit of the penalties."""
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
        ids = self.store.episode_ids(self._readable) if episode_ids is None else episode_ids
        missing = [e for e in ids if not self.index.has_episode(e)]
        records = self._records_of(missing) if missing else []
        self.index.add(records)
        return len(records)

    def _records_of(self, episode_ids: Sequence[str]) -> list[Experience]:
        """The stored records of these episodes that this learner may read."""
        assert self.store is not None
        records = self.store.experiences_of(episode_ids)
        return [r for r in records if r.namespace in self._readable]

    def reseed(self, seed: int) -> None:
        """Restart the sampling generator (parallel runs seed every episode)."""
        self.rng = np.random.default_rng(seed)

    @property
    def uses_memory(self) -> bool:
        """False for the frozen-LLM configuration (no store)."""
        return self.store is not None

    @property
    def paced(self) -> bool:
        """Whether the pace bandit may hand episodes to memory: not without memory, not in a
        parallel run's worker, not when memory does not correct by advantages (``icl``)."""
        ok = self.uses_memory and not self.shared
        return ok and self.config.policy.correction == "advantages"

    def recall(self, task_id: str, lead: Lead, score: float) -> None:
        """A learning episode of ``task_id`` that an earlier process played into this run (a
        resumed run), with its lead and the sum of its rewards: the pace bandit counts it as if
        it had been played here, so the resumed run picks leads from the same window."""
        if self.paced:
            self.pace.observe(task_id, lead, score)

    def episode(
        self, task_id: str = "", episode_id: str | None = None, *, learn: bool = True
    ) -> Episode:
        """Start recording an episode; decisions and rewards go through the returned object.

        With ``learn=False`` (a test episode) memory is frozen: the episode still uses its own
        steps (working memory), but ``finish`` stores nothing.

        A parallel run's worker (``shared``) fits the model's weight within the episode only:
        what it saw in earlier episodes depends on which worker played what, and a run's
        decisions must not.
        """
        if self.shared:
            self.calibration = PriorCalibration(self.config.policy)
        lead: Lead = self.pace.choose(task_id, explore=learn) if self.paced else "model"
        return Episode(self, task_id, episode_id or uuid.uuid4().hex, learn=learn, lead=lead)

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
        looped: Mapping[str, int] | None = None,
        lead: Lead = "model",
    ) -> Decision:
        """Correct the base distribution over ``candidates`` with memory and choose an action.

        Args:
            state: abstracted state text (or a :class:`State`).
            candidates: the actions available now.
            logits: base logits ``z(a|s)``, one per candidate; omit to let ``model`` score them.
            key: exact state key (equal keys raise the similarity of two states).
            prompt: prompt for the model when ``logits`` is omitted, or a function that builds
                it from the neighbours (memory in the prompt, the ``icl`` agent).
            valid: tells whether a memory-proposed action is valid now (none proposed without).
            working: the current episode's earlier steps valued so far (:class:`Episode`).
            task_id: the current task (the model's weight, ``exclude_own_task``).
            looped: how often each action looped from this state in this episode.
            lead: ``memory``: the model's weight is 0 and it is not asked to score
                (:mod:`jitrl.method.pace`).
        """
        st = as_state(state, key)
        cands = clean_candidates(candidates)
        t0 = time.perf_counter()
        unit = self.reward_units.unit(task_id or "")
        loops = {action: count * unit for action, count in (looped or {}).items()}
        view = self._memory_view(st, cands, logits, valid, working, task_id, loops)
        t_mem = time.perf_counter() - t0
        led = lead == "model"
        base, usage, llm_s = self._base_logits(view, prompt, led)
        t1 = time.perf_counter()
        task = task_id or ""
        weight = self.calibration.weight(task) if led else 0.0
        adv = self._advantages(view, loops)
        beta = self.beta(task)
        z = corrected_logits(base, adv, beta, prior_weight=weight)
        idx, probs = select(z, self.config.policy, self.rng)
        if view.estimates is not None and led:
            est = view.estimates
            per_unit = self.config.policy.beta / beta  # Q in the unit beta is measured in
            q = tuple(x * per_unit for x in est.q)
            self.calibration.observe(task, sample_of(base, q, est.counts))
        t_mem += time.perf_counter() - t1
        timing = (llm_s, t_mem, usage)
        chosen = (idx, z.tolist(), probs.tolist())
        return _decision(st, view, base, chosen, timing, beta, weight, lead)

    def beta(self, task_id: str) -> float:
        """The KL strength of ``task_id`` in reward points: ``policy.beta``, times the task's
        reward unit when ``policy.beta_unit`` is ``"reward"``."""
        policy = self.config.policy
        if policy.beta_unit == "reward":
            return policy.beta * self.reward_units.unit(task_id)
        return policy.beta

    def _memory_view(
        self,
        state: State,
        cands: list[str],
        logits: Sequence[float] | None,
        valid: Validator | None,
        working: Sequence[Experience],
        task_id: str | None,
        looped: Mapping[str, float],
    ) -> _View:
        """Neighbours, proposals, estimates, and the candidates left after pruning."""
        neighbours = self._neighbours(state, working, task_id) if self.uses_memory else []
        extra = self._proposals(neighbours, cands, valid)
        given = checked_logits(logits, cands, self.config.policy.floor_logit, len(extra))
        everything = cands + extra
        values = self.config.values
        offsets = self.index.kinds.offsets(task_id or "") if values.kind_prior > 0.0 else None
        est = (
            estimate(neighbours, everything, values, looped, offsets) if self.uses_memory else None
        )
        keep = prune(state.text, everything, extra, est, self.config.pruning)
        if len(keep) < len(everything):
            everything = [everything[i] for i in keep]
            given = [given[i] for i in keep] if given is not None else None
            if self.uses_memory:
                est = estimate(neighbours, everything, values, looped, offsets)
        proposed = [a for a in extra if a in set(everything)]
        return _View(neighbours, everything, proposed, est, given)

    def _advantages(self, view: _View, looped: Mapping[str, float]) -> tuple[float, ...]:
        """What memory adds to the logits (``PolicyConfig.correction``): the advantages, only
        the exploration bonus and the loop penalty (the ``icl`` agent), or nothing."""
        est = view.estimates
        correction = self.config.policy.correction
        if est is None or correction == "none":
            return (0.0,) * len(view.candidates)
        if correction == "advantages":
            return est.advantages
        return exploration(est, view.candidates, looped, self.config.values)

    def _neighbours(
        self, state: State, working: Sequence[Experience], task_id: str | None
    ) -> list[Neighbour]:
        episodic = self.config.retrieval.episodic_memory
        found = self.index.neighbours(state, task_id) if episodic else []
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
        self, view: _View, prompt: Prompt | PromptBuilder | None, led: bool
    ) -> tuple[list[float], dict[str, float], float]:
        """The caller's logits; else the model's, or zeros when memory leads (weight 0, so the
        model is not asked). Returns them with the model's usage and seconds."""
        if view.logits is not None:
            return list(view.logits), {}, 0.0
        if prompt is None or self.model is None:  # refused whoever leads
            raise ValueError(NEEDS_SCORES)
        if not led:
            return [0.0] * len(view.candidates), {}, 0.0
        built = prompt(view.neighbours) if callable(prompt) else prompt
        res: ScoreResult = self.model.score(built, view.candidates)
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
                save_index(self.index, self._index_folder)
            finally:
                self.store.close()


__all__ = ["Episode", "Estimates", "JitRL", "PromptBuilder", "Validator"]
