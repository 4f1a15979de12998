"""Running episodes: the episode loop, run folders, rounds of parallel episodes sharing one
memory, the executors they run on, and comparisons of agents."""
