"""Memories of any size for ``benchmarks/retrieval.py``: recorded Jericho states, synthetic world.

- **jericho**: the states recorded in ``decisions.jsonl`` files under ``benchmarks/results``
  (real abstracted texts ``location: ... | inventory: ... | observation: ...`` with their world
  keys). Recorded episodes are replayed in random order; each state recurs verbatim with
  probability ``1 - perturb`` and otherwise its observation gets 1-3 word edits (words drawn from
  the recorded observations by frequency) and a new key, so the memory grows into clusters of
  near-duplicates around the recorded states, as a long-running agent's memory does.
- **synthetic**: a generated text-adventure world (rooms with descriptions, items, messages; a
  Zipf vocabulary plus function words shared by everything), walked by random episodes. Rooms
  give strong local overlap, function words give the weak global overlap that makes an inverted
  index touch most of the memory.

Queries come from held-out episodes generated with another seed: some states recur verbatim,
others are new variants, like the states a new episode meets.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from jitrl.method.types import Experience, State

Step = tuple[str, str | None, str]
"""(state text, state key, action) of one recorded decision."""

FUNCTION_WORDS = ["the", "a", "you", "is", "of", "to", "and", "there", "here", "it", "in", "on"]
ACTIONS = ["north", "south", "east", "west", "up", "down", "look", "inventory", "wait"]


def _key(*parts: object) -> str:
    return hashlib.md5("|".join(map(str, parts)).encode()).hexdigest()[:16]


@dataclass
class Trace:
    """One recorded episode: its task and steps."""

    task: str
    steps: list[Step]


def jericho_traces(root: Path) -> list[Trace]:
    """Every recorded episode under ``root`` (``decisions.jsonl`` files), task = game name."""
    traces: dict[tuple[str, object], Trace] = {}
    for path in sorted(root.glob("**/decisions.jsonl")):
        parts = path.relative_to(root).parts
        task = parts[parts.index("runs") + 1] if "runs" in parts else path.parent.name
        for line in path.read_text(encoding="utf-8").splitlines():
            d = json.loads(line)
            state = d.get("state") or {}
            if not isinstance(state, dict) or not state.get("text"):
                continue
            trace = traces.setdefault((str(path), d.get("episode")), Trace(task, []))
            trace.steps.append((state["text"], state.get("key"), str(d.get("action", ""))))
    return [t for t in traces.values() if t.steps]


def played_jericho_traces(games: Path, episodes: int, steps: int, seed: int) -> list[Trace]:
    """Episodes of uniformly random valid actions on every game file in ``games`` (when no
    recorded decisions are at hand): text-only states, as the method sees them by default."""
    from jitrl.envs import make_env

    rng = random.Random(seed)
    out: list[Trace] = []
    for game in sorted(p for p in games.iterdir() if p.suffix[:2] == ".z"):
        with closing(make_env(f"jericho:{game}", max_steps=steps, seed=seed)) as env:
            for episode in range(episodes):
                _, info = env.reset(seed=seed + episode)
                trace = Trace(game.stem, [])
                while info.candidates:
                    action = rng.choice(info.candidates)
                    trace.steps.append((info.state.text, info.state.key, action))
                    _, _, terminated, truncated, info = env.step(action)
                    if terminated or truncated:
                        break
                out.append(trace)
    return out


def _perturb(text: str, rng: random.Random, vocab: list[str]) -> str:
    head, sep, obs = text.rpartition("observation: ")
    words = obs.split()
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        i = rng.randrange(len(words) + 1)
        if op < 0.6 and i < len(words):
            words[i] = rng.choice(vocab)
        elif op < 0.85 or len(words) < 4:
            words.insert(i, rng.choice(vocab))
        elif i < len(words):
            del words[i]
    return head + sep + " ".join(words)


class JerichoMemory:
    """Records replayed (and perturbed) from recorded Jericho episodes."""

    def __init__(self, traces: list[Trace], perturb: float = 0.35) -> None:
        if not traces:
            raise ValueError("no recorded Jericho decisions found")
        self.traces = traces
        self.perturb = perturb
        self.vocab = [
            w for t in traces for text, _, _ in t.steps for w in text.rpartition(": ")[2].split()
        ]

    def episodes(self, seed: int) -> Iterator[list[Experience]]:
        """An endless stream of episodes."""
        rng = random.Random(seed)
        for n in itertools.count():
            trace = rng.choice(self.traces)
            start = rng.randrange(max(1, len(trace.steps) - 30))
            out = []
            for t, (text, key, action) in enumerate(trace.steps[start : start + 40]):
                if rng.random() < self.perturb:
                    text = _perturb(text, rng, self.vocab)
                    key = _key(key, text)
                state = State(text, key)
                out.append(
                    Experience(state, action, rng.gauss(0, 1), f"s{seed}e{n}", t, trace.task)
                )
            yield out


class SyntheticWorld:
    """A generated text-adventure world: tasks of connected rooms, items and messages."""

    def __init__(self, seed: int = 0, tasks: int = 60, rooms_per_task: int = 60) -> None:
        rng = random.Random(seed)
        syll = ["ka", "lo", "mi", "ra", "te", "su", "no", "vi", "da", "pe", "zo", "gu", "ri", "ba"]
        vocab = sorted({"".join(rng.choices(syll, k=rng.randint(2, 3))) for _ in range(8000)})
        rng.shuffle(vocab)
        self.vocab = vocab
        self.weights = list(itertools.accumulate(1.0 / (r + 1) ** 1.05 for r in range(len(vocab))))
        self.rng = rng
        self.items = [f"{self._words(1)} {self._words(1)}" for _ in range(600)]
        self.messages = [self._sentence(4, 12) for _ in range(4000)]
        self.tasks = []
        for task in range(tasks):
            rooms = []
            for _ in range(rooms_per_task):
                name = f"{self._words(1)} {rng.choice(['hall', 'room', 'cave', 'path', 'yard'])}"
                rooms.append((name, self._sentence(10, 30), rng.sample(self.messages, 15)))
            edges = [rng.sample(range(rooms_per_task), 3) for _ in range(rooms_per_task)]
            items = rng.sample(self.items, 8)  # found in this order as the game progresses
            self.tasks.append((f"task{task}", rooms, edges, items))

    def _words(self, n: int) -> str:
        return " ".join(self.rng.choices(self.vocab, cum_weights=self.weights, k=n))

    def _sentence(self, lo: int, hi: int) -> str:
        words = []
        for _ in range(self.rng.randint(lo, hi)):
            pick = self.rng.random() < 0.35
            words.append(self.rng.choice(FUNCTION_WORDS) if pick else self._words(1))
        return " ".join(words)

    def episodes(self, seed: int) -> Iterator[list[Experience]]:
        """An endless stream of random-walk episodes of 20-40 steps."""
        rng = random.Random(seed)
        for n in itertools.count():
            task, rooms, edges, items = rng.choice(self.tasks)
            room, inventory, out = rng.randrange(len(rooms)), [], []
            for t in range(rng.randint(20, 40)):
                name, desc, messages = rooms[room]
                roll = rng.random()
                if roll < 0.5:
                    obs, kind = desc, "d"
                elif roll < 0.9:
                    obs = rng.choice(messages)
                    kind = obs
                else:
                    words = desc.split()
                    for _ in range(rng.randint(1, 2)):
                        words[rng.randrange(len(words))] = rng.choice(self.vocab[:2000])
                    obs = kind = " ".join(words)
                inv = ", ".join(inventory) or "nothing"
                text = f"location: {name} | inventory: {inv} | observation: {obs}"
                action = rng.choice(ACTIONS)
                state = State(text, _key(task, room, inv, kind))
                out.append(Experience(state, action, rng.gauss(0, 1), f"s{seed}e{n}", t, task))
                if rng.random() < 0.05 and len(inventory) < len(items):
                    inventory.append(items[len(inventory)])
                elif inventory and rng.random() < 0.02:
                    inventory.pop()
                room = rng.choice(edges[room])
            yield out


def take(episodes: Iterator[list[Experience]], n: int) -> list[Experience]:
    """The first ``n`` records of whole episodes (the last one is cut to fit)."""
    out: list[Experience] = []
    for episode in episodes:
        out.extend(episode[: n - len(out)])
        if len(out) >= n:
            return out
    return out


def queries(episodes: Iterator[list[Experience]], n: int, seed: int) -> list[State]:
    """``n`` states of held-out episodes (one or two per episode)."""
    rng = random.Random(seed)
    out: list[State] = []
    for episode in episodes:
        out.extend(e.state for e in rng.sample(episode, min(2, len(episode))))
        if len(out) >= n:
            return out[:n]
    return out
