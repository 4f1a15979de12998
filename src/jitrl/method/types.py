"""Plain, immutable data that flows between jitrl's modules.

Every object here is a frozen dataclass with no behaviour beyond small derived views, so that
they can be logged, compared in tests and serialised to JSON without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Lead = Literal["model", "memory"]
"""Who leads an episode: the model at its weight, or memory alone (:mod:`jitrl.method.pace`)."""

DEFAULT_NAMESPACE = "default"
"""The namespace of every record stored without one (and of every record of an older store)."""
MAX_NAMESPACE_CHARS = 200
"""Longest namespace name accepted."""


def check_namespace(name: object) -> str:
    """``name`` if it is a valid namespace (a non-blank string of printable characters, without
    commas, at most :data:`MAX_NAMESPACE_CHARS` long); ``ValueError``/``TypeError`` otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"a namespace must be a str, got {type(name).__name__}")
    if not name.strip() or not name.isprintable() or "," in name:
        raise ValueError(f"a namespace must be printable, non-blank and without commas: {name!r}")
    if len(name) > MAX_NAMESPACE_CHARS:
        raise ValueError(f"a namespace must be at most {MAX_NAMESPACE_CHARS} characters long")
    return name


@dataclass(frozen=True)
class State:
    """An abstracted state: what memory compares, not what the environment printed.

    Attributes:
        text: compact description (location, inventory, observation) used for n-gram similarity.
        key: optional exact key (e.g. a game's world-state hash); equal keys mean similarity 1.0.
    """

    text: str
    key: str | None = None

    @property
    def identity(self) -> str:
        """What "the same state" means everywhere (revisits, near-duplicates, tables): the
        exact key when there is one, else the text."""
        return f"key:{self.key}" if self.key is not None else f"text:{self.text}"


@dataclass(frozen=True)
class Experience:
    """One stored decision: the state, the action taken there and the discounted return after it.

    Attributes:
        state: the abstracted state in which the action was taken.
        action: the action text, exactly as sent to the environment.
        ret: discounted return ``G_t`` from this step to the end of the episode.
        episode_id: identifier of the episode this decision belongs to.
        step: index of the decision within its episode (0-based).
        task_id: environment/task identifier (game file, generated game seed, ...).
        reward: the step reward ``r_t`` that entered the return.
        created_at: UNIX time at which the episode was stored.
        namespace: whose memory the record belongs to (a user, an agent, a run: see
            :class:`Namespaces`); retrieval only ever sees the namespaces it is given.
    """

    state: State
    action: str
    ret: float
    episode_id: str
    step: int
    task_id: str = ""
    reward: float = 0.0
    created_at: float = 0.0
    namespace: str = DEFAULT_NAMESPACE


@dataclass(frozen=True)
class Neighbour:
    """A retrieved experience and its similarity to the query state (in ``(0, 1]``)."""

    experience: Experience
    similarity: float


@dataclass(frozen=True)
class Estimates:
    """Value estimates over the neighbours of one state, aligned with a candidate list.

    Attributes:
        q: ``Q(s, a)`` per candidate (with the optimistic value for unseen actions).
        counts: number of neighbours that took each candidate, ``n(s, a)``.
        v: ``V(s)``, the similarity-weighted mean return of all neighbours (0.0 if none).
        advantages: ``A(s, a)`` per candidate after optional rescaling.
    """

    q: tuple[float, ...]
    counts: tuple[int, ...]
    v: float
    advantages: tuple[float, ...]


@dataclass(frozen=True)
class Decision:
    """Everything that went into one choice; written to ``decisions.jsonl`` for inspection.

    Attributes:
        state: the abstracted state.
        candidates: the candidate actions, in the order of all per-candidate tuples below.
        base_logits: the frozen LLM's logits ``z(a|s)``.
        neighbours: the retrieved experiences used for the estimates.
        estimates: Q, V and A (``None`` when memory is not used, e.g. the static agent).
        logits: corrected logits ``z'(a|s)``.
        probs: ``softmax(z')`` at the configured temperature.
        action: the chosen candidate.
        proposed: candidates that memory added (not offered by the environment or LLM).
        llm_seconds: wall time spent in the language model for this decision.
        memory_seconds: wall time spent in retrieval, estimates and the update.
        llm_usage: the model's token and call counts for this decision.
        beta: the KL strength of the update.
        prior_weight: the weight ``lambda`` of the base logits (1: the model as it is;
            :mod:`jitrl.method.calibration`).
        lead: ``model``, or ``memory`` when memory alone led the episode (the model's weight
            0, its logits not computed; :mod:`jitrl.method.pace`).
    """

    state: State
    candidates: tuple[str, ...]
    base_logits: tuple[float, ...]
    neighbours: tuple[Neighbour, ...]
    estimates: Estimates | None
    logits: tuple[float, ...]
    probs: tuple[float, ...]
    action: str
    proposed: tuple[str, ...] = ()
    llm_seconds: float = 0.0
    memory_seconds: float = 0.0
    llm_usage: dict[str, Any] = field(default_factory=dict)
    beta: float = 0.0
    prior_weight: float = 1.0
    lead: Lead = "model"

    @property
    def index(self) -> int:
        """Position of the chosen action in ``candidates``."""
        return self.candidates.index(self.action)
