"""jitrl around your own agent: a toy task where the agent's favourite move is a trap.

The "agent" below stands for your LLM agent: it proposes candidate actions and logits. Its
favourite action at the fork ("left") falls into a pit. jitrl's memory learns that within a few
episodes and the corrected policy goes right; the agent itself never changes.

    python examples/own_agent.py
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from jitrl import JitRL

log = logging.getLogger("own_agent")


class ForkTask:
    """Corridor -> fork; 'left' is a pit (failure), 'right' leads to the treasure (+10)."""

    def __init__(self) -> None:
        self.where, self.done, self.failed = "corridor", False, False

    def step(self, action: str) -> float:
        if self.where == "corridor":
            self.where = "fork" if action == "walk" else "corridor"
            return 0.0
        self.done = True
        self.failed = action == "left"
        return 10.0 if action == "right" else 0.0


def my_agent(where: str) -> tuple[list[str], list[float]]:
    """Your agent: candidate actions and its (biased) logits for them."""
    if where == "corridor":
        return ["walk", "wait"], [0.0, -2.0]
    return ["left", "right"], [0.0, -1.5]  # it likes "left"


def play(memory: Path, episodes: int) -> list[float]:
    jit = JitRL(memory)
    scores = []
    for _ in range(episodes):
        task, total = ForkTask(), 0.0
        with jit.episode(task_id="fork") as ep:
            for _step in range(10):
                if task.done:
                    break
                cands, logits = my_agent(task.where)
                d = ep.decide(task.where, cands, logits, key=task.where)
                reward = task.step(d.action)
                ep.reward(reward)
                total += reward
            ep.finish(failed=task.failed)
        scores.append(total)
    jit.close()
    return scores


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as tmp:
        log.info("scores per episode: %s", play(Path(tmp) / "memory.sqlite", 6))
