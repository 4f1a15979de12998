"""Request and response bodies of the HTTP service, with their validation and limits.

Requests are validated strictly (no coercion of ``"1.5"`` to a number or ``"yes"`` to a bool,
no unknown fields) and every list and string has a length ceiling, so that a bad request is
answered with a 422 that names the offending field instead of reaching the learner. The
ceilings here are the hard ones shown in the OpenAPI schema; the configured, usually lower,
limits are checked by :func:`limit_error`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from jitrl.llm.base import Prompt
from jitrl.method.types import Lead
from jitrl.service.config import (
    HARD_MAX_ABS_REWARD,
    HARD_MAX_CANDIDATES,
    HARD_MAX_TEXT_CHARS,
    MAX_ID_CHARS,
)

Text = Annotated[str, StringConstraints(max_length=HARD_MAX_TEXT_CHARS)]
"""Any string up to the hard length ceiling."""


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank")
    return text


def _no_trailing_space(text: str) -> str:
    if text != text.rstrip():
        raise ValueError("must not end with whitespace")
    return text


NonBlank = Annotated[
    str, StringConstraints(min_length=1, max_length=HARD_MAX_TEXT_CHARS), AfterValidator(_not_blank)
]
"""A non-blank string (candidate actions, state texts)."""
Finite = Annotated[float, Field(allow_inf_nan=False)]
"""A finite number (``NaN`` and ``Infinity`` are refused)."""
EpisodeId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9][\w.:-]*$"),
]
"""Letters, digits, ``_ . : -``, starting with a letter or digit."""


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class OpenRequest(_Request):
    """Body of ``POST /episodes``."""

    task_id: str = Field(default="", max_length=MAX_ID_CHARS, description="task or game identifier")
    episode_id: EpisodeId | None = Field(
        default=None, description="id to use (default: a random one)"
    )


class PromptIn(_Request):
    """A prompt for the server's model to score the candidates after (see ``jitrl.llm``)."""

    system: Text = Field(description="instructions that stay the same across steps")
    user: Text = Field(description="the part that changes every step")
    answer_prefix: Annotated[str, AfterValidator(_no_trailing_space)] = Field(
        default="Action:",
        max_length=1000,
        description="opens the answer; candidates are scored after it and one space "
        "(must not end with whitespace)",
    )

    def to_prompt(self) -> Prompt:
        """The library's :class:`~jitrl.llm.base.Prompt`."""
        return Prompt(self.system, self.user, self.answer_prefix)


class DecideRequest(_Request):
    """Body of ``POST /episodes/{id}/decide``: the state, the candidates, and how to score."""

    state: NonBlank = Field(description="abstracted state text that memory compares")
    key: Text | None = Field(default=None, description="exact state key (equal keys: same state)")
    candidates: list[NonBlank] = Field(
        min_length=1, max_length=HARD_MAX_CANDIDATES, description="the actions available now"
    )
    logits: list[Finite] | None = Field(
        default=None, max_length=HARD_MAX_CANDIDATES, description="base logits, one per candidate"
    )
    prompt: PromptIn | None = Field(default=None, description="instead of logits: the model scores")
    propose: bool = Field(
        default=False,
        description="let memory add actions that neighbours took with positive advantage",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DecideRequest:
        seen: set[str] = set()
        for c in self.candidates:
            if c in seen:
                raise ValueError(f"duplicate candidate {c!r}")
            seen.add(c)
        if self.logits is not None and self.prompt is not None:
            raise ValueError("send either logits or a prompt, not both")
        if self.logits is None and self.prompt is None:
            raise ValueError("send base logits, or a prompt for the server's model to score")
        if self.logits is not None and len(self.logits) != len(self.candidates):
            raise ValueError(
                f"{len(self.candidates)} candidates but {len(self.logits)} logits: "
                "send one logit per candidate, in the same order"
            )
        return self


class RewardRequest(_Request):
    """Body of ``POST /episodes/{id}/reward``."""

    reward: Finite = Field(
        ge=-HARD_MAX_ABS_REWARD,
        le=HARD_MAX_ABS_REWARD,
        description="the reward that followed the latest decision; the server may accept a "
        "smaller range (its max_abs_reward setting)",
    )


class FinishRequest(_Request):
    """Body of ``POST /episodes/{id}/finish`` (may be empty)."""

    failed: bool = Field(default=False, description="the episode ended in failure (death, loss)")


def limit_error(req: DecideRequest, max_candidates: int, max_text_chars: int) -> str | None:
    """Why ``req`` exceeds the configured limits, or ``None`` if it does not."""
    if len(req.candidates) > max_candidates:
        return f"{len(req.candidates)} candidates; this server accepts at most {max_candidates}"
    texts = {"state": req.state, "key": req.key or ""}
    texts.update({f"candidates[{i}]": c for i, c in enumerate(req.candidates)})
    if req.prompt is not None:
        texts.update({"prompt.system": req.prompt.system, "prompt.user": req.prompt.user})
    for name, text in texts.items():
        if len(text) > max_text_chars:
            return (
                f"{name} has {len(text)} characters; this server accepts at most {max_text_chars}"
            )
    return None


class OpenResponse(BaseModel):
    """An opened episode."""

    episode_id: str
    task_id: str
    expires_in_seconds: float = Field(description="idle time left before the episode expires")
    lead: Lead = Field(
        description="who leads this episode: model (your logits or prompt count, at their "
        "weight) or memory (they get weight 0: send zeros and skip your model's call)"
    )


class StateOut(BaseModel):
    """The abstracted state of a decision."""

    text: str
    key: str | None


class NeighbourOut(BaseModel):
    """A retrieved experience."""

    model_config = ConfigDict(populate_by_name=True)

    action: str
    return_: float = Field(alias="return", description="discounted return after the action")
    similarity: float
    episode_id: str
    step: int
    task_id: str


class DecisionOut(BaseModel):
    """A decision: the choice and everything that went into it (per-candidate lists align)."""

    episode_id: str
    step: int = Field(description="index of this decision in its episode")
    action: str = Field(description="the chosen candidate")
    state: StateOut
    candidates: list[str] = Field(description="the candidates, with memory's proposals last")
    proposed: list[str] = Field(description="candidates that memory added")
    base_logits: list[float]
    logits: list[float] = Field(description="corrected logits lambda * z + A / beta")
    probs: list[float]
    prior_weight: float = Field(description="lambda, the weight of base_logits (0: memory led)")
    lead: Lead = Field(
        description="who led this episode: your logits at their weight, or memory alone"
    )
    neighbours: list[NeighbourOut]
    q: list[float] | None = Field(description="Q(s, a) per candidate (null without memory)")
    counts: list[int] | None
    v: float | None = Field(description="V(s)")
    advantages: list[float] | None
    llm_seconds: float
    memory_seconds: float
    llm_usage: dict[str, float]


class RewardResponse(BaseModel):
    """A recorded reward."""

    episode_id: str
    step: int = Field(description="the decision that the reward followed")
    reward: float


class FinishResponse(BaseModel):
    """A finished episode."""

    episode_id: str
    stored: int = Field(description="experiences stored (one per decision)")
    returns: list[float] = Field(description="discounted return of each decision")
    total_reward: float = Field(description="sum of the shaped step rewards")


class DropResponse(BaseModel):
    """A deleted episode."""

    episode_id: str
    discarded: int = Field(description="decisions thrown away (nothing was stored)")


class StatsResponse(BaseModel):
    """The store's content and the service's open episodes."""

    experiences: int
    episodes: int
    tasks: int
    states: int
    actions: int
    mean_return: float
    schema_version: int
    indexed: int = Field(description="experiences in the learner's in-memory index")
    open_episodes: int
    expired_stored: int
    expired_dropped: int


class HealthResponse(BaseModel):
    """Liveness and configuration summary."""

    status: Literal["ok"]
    version: str
    model: str | None
    memory: str
    open_episodes: int
    episode_ttl_seconds: float
    on_expire: str
    api_keys: bool = Field(description="requests need an API key (Authorization: Bearer)")
    max_abs_reward: float = Field(description="largest reward magnitude accepted")


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: a readable ``detail``, and the field ``errors`` for a 422."""

    detail: str
    errors: list[dict[str, Any]] | None = None
