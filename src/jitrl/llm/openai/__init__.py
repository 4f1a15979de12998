"""An OpenAI-compatible backend on the official ``openai`` SDK (``pip install 'jitrl[openai]'``).

Works with OpenAI's API and with local servers that speak it (llama-cpp-python's
``python -m llama_cpp.server``, vLLM, ...). Candidates are scored in one of three modes, chosen
by :attr:`OpenAIConfig.mode` (``auto`` picks the best the server supports at connect time):

- ``exact`` (:mod:`.exact`, :mod:`.echo`): summed prompt log-probs of each candidate from
  ``/v1/completions`` with ``echo``, after an alignment check that refuses servers whose echoed
  log-probs are shifted (:class:`ExactModeRefused`);
- ``labelled`` (:mod:`.labelled`): the log-prob of each option's letter as the one generated
  token of a chat completion, averaged over several orders of the options;
- ``verbal`` (:mod:`.verbal`): confidences the model writes as JSON, the last resort.

Endpoint, time bound and retries follow the SDK (:mod:`.client`): without ``@URL`` the SDK's
own endpoint is used (``$OPENAI_BASE_URL``, else ``https://api.openai.com/v1``); each attempt
of a request may wait up to :attr:`OpenAIConfig.timeout` seconds (default 60) for the server,
and the SDK retries transient failures :attr:`OpenAIConfig.max_retries` times (default 2), so a
request costs at worst ``timeout * (1 + max_retries)`` seconds (3 minutes by default) plus the
SDK's short pauses between attempts. What cannot be had, including any malformed response,
raises :class:`~jitrl.llm.base.LLMError` with a one-line message that never holds the API key.
The SDK is imported only when a client is built.
"""

from __future__ import annotations

from jitrl.llm.base import LLMError
from jitrl.llm.openai.backend import OpenAIModel
from jitrl.llm.openai.client import INSTALL_HINT, ApiClient
from jitrl.llm.openai.config import Mode, OpenAIConfig
from jitrl.llm.openai.echo import detect_alignment, locate_candidate
from jitrl.llm.openai.exact import ExactModeRefused, ExactScorer, ProbeReport
from jitrl.llm.openai.labelled import LabelledScorer, label_logprobs
from jitrl.llm.openai.verbal import VerbalScorer, confidences_to_logprobs, parse_confidences

__all__ = [
    "INSTALL_HINT",
    "ApiClient",
    "ExactModeRefused",
    "ExactScorer",
    "LLMError",
    "LabelledScorer",
    "Mode",
    "OpenAIConfig",
    "OpenAIModel",
    "ProbeReport",
    "VerbalScorer",
    "confidences_to_logprobs",
    "detect_alignment",
    "label_logprobs",
    "locate_candidate",
    "parse_confidences",
]
