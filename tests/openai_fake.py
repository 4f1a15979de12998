"""A scriptable OpenAI-compatible HTTP server for tests (http.server in a thread, loopback).

:class:`FakeServer` answers every POST with what its ``responder`` returns for ``(path, body)``
and records the requests and their headers. Helpers build chat replies and an echo "model" for
``/v1/completions`` whose prompt log-probs are aligned or shifted like llama-cpp-python's.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COLOURS = frozenset(["red", "green", "blue", "yellow", "purple", "orange", "black", "white"])
END_OF_TURN = "<|im_end|>"
GENERATED = " x"
_TOKEN = re.compile(r"<\|im_(?:start|end)\|>|\n| ?[^\s<]+| ")


@dataclass
class Reply:
    """One HTTP answer: status, body (dict/list: JSON; bytes: raw), delay, extra headers."""

    status: int = 200
    body: Any = field(default_factory=dict)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[str, dict[str, Any]], Reply]
FAST_RETRY = {"retry-after-ms": "1"}
"""Headers asking the SDK to retry after 1 ms (instead of its backoff of 0.5 s and more)."""


def scripted(*replies: Reply) -> Responder:
    """Answer with ``replies`` in turn, then repeat the last one."""
    queue = list(replies)

    def respond(path: str, body: dict[str, Any]) -> Reply:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return respond


class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1 (random port) answering with ``responder``."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.headers: list[dict[str, str]] = []
        """Headers of each request (lower-case names), in the order of ``requests``."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                body = json.loads(raw or b"{}")
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                server.requests.append((self.path, body))
                reply = server.responder(self.path, body)
                time.sleep(reply.delay)
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = data.encode() if isinstance(data, str) else data
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


def chat_reply(alternatives: dict[str, float] | None, text: Any = "A") -> dict[str, Any]:
    """A chat completion answering ``text`` (any JSON value: malformed answers too); with
    ``top_logprobs`` when ``alternatives``."""
    logprobs = None
    if alternatives is not None:
        top = [{"token": t, "logprob": lp, "bytes": None} for t, lp in alternatives.items()]
        first = top[0] if top else {"token": text, "logprob": 0.0, "bytes": None}
        logprobs = {"content": [{**first, "top_logprobs": top}], "refusal": None}
    return {
        "id": "chat-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {
                "index": 0,
                "finish_reason": "length",
                "message": {"role": "assistant", "content": text},
                "logprobs": logprobs,
            }
        ],
        "usage": {"prompt_tokens": 50, "completion_tokens": 1, "total_tokens": 51},
    }


def tokenize(text: str) -> list[str]:
    """The fake model's tokens: ChatML markers, newlines, words with their leading space."""
    return _TOKEN.findall(text)


def fake_logprob(token: str) -> float:
    """The fake model's log-prob of a token: colours are near-certain, the rest unlikely."""
    return -0.1 if token.strip() in COLOURS else -1.0 - 0.25 * len(token)


def _echo_choice(index: int, text: str, shifted: bool, marker_text: str) -> tuple[dict, int]:
    tokens = [marker_text if t == END_OF_TURN else t for t in tokenize(text)]
    values = [fake_logprob(t) for t in tokens]
    if shifted:  # entry i holds the distribution predicting token i + 1; generated not listed
        nxt = [*tokens[1:], GENERATED]
        top = [{n: -0.05, t: v} for t, n, v in zip(tokens, nxt, values, strict=True)]
    else:
        tokens, values = [*tokens, GENERATED], [*values, -0.5]
        top = [{t: v} for t, v in zip(tokens, values, strict=True)]
    values[0], top[0] = None, None  # type: ignore[call-overload]
    logprobs = {"tokens": tokens, "token_logprobs": values, "top_logprobs": top}
    logprobs["text_offset"] = [sum(map(len, tokens[:i])) for i in range(len(tokens))]
    choice = {"index": index, "text": text + GENERATED, "finish_reason": "length"}
    return {**choice, "logprobs": logprobs}, len(tokenize(text))


def echo_responder(
    shifted: bool = False, lists: bool = True, marker_text: str = "", chat: Reply | None = None
) -> Responder:
    """``/completions`` with echo as a fake model (aligned or shifted, list prompts or not);
    ``/chat/completions`` answers ``chat`` (default: labelled alternatives)."""

    def respond(path: str, body: dict[str, Any]) -> Reply:
        if path.endswith("/chat/completions"):
            return chat or Reply(body=chat_reply({"A": -0.5, "B": -1.5}))
        assert body.get("echo") is True and body.get("max_tokens") == 1
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        if len(prompts) > 1 and not lists:
            return Reply(500, {"error": {"message": "list prompts unsupported"}})
        choices, prompt_tokens = [], 0
        for i, text in enumerate(prompts):
            choice, count = _echo_choice(i, text, shifted, marker_text)
            choices.append(choice)
            prompt_tokens += count
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(prompts)}
        usage["total_tokens"] = prompt_tokens + len(prompts)
        body = {"id": "c", "object": "text_completion", "created": 0, "model": "fake"}
        return Reply(body={**body, "choices": choices, "usage": usage})

    return respond


def iter_bodies(server: FakeServer, suffix: str) -> Iterator[dict[str, Any]]:
    """Bodies of the requests whose path ends with ``suffix``."""
    return (body for path, body in server.requests if path.endswith(suffix))
