"""The OpenAI-compatible backend's configuration: specs, endpoint, time bound, retries, API key.

Endpoint, ``timeout`` and ``max_retries`` must be the SDK's own (``openai.OpenAI`` reads
``$OPENAI_BASE_URL`` when no ``base_url`` is given); spec errors are one-line ValueErrors that
name the option and what it allows; the API key is sent but never shown.
"""

from __future__ import annotations

import logging
import math

import pytest

from jitrl.llm import Prompt, load_model
from jitrl.llm.base import LLMError
from jitrl.llm.openai import ApiClient, OpenAIConfig, OpenAIModel
from jitrl.llm.openai.client import display_url
from tests.openai_fake import FakeServer, Reply, chat_reply, scripted

PROMPT = Prompt(system="You play a game.", user="You see a mailbox.", answer_prefix="Command:")
CANDIDATES = ["open mailbox", "north", "xyzzy"]
LABELLED_OK = Reply(body=chat_reply({"A": -0.4, "B": -1.2, "C": -2.5}))
SDK_DEFAULT_URL = "https://api.openai.com/v1"
SECRET = "sk-test-secret-0123456789"


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start without the SDK's environment variables."""
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------- spec parsing


def test_spec_options_parse() -> None:
    spec = (
        "m@http://h:1/v1/?mode=labelled&permutations=3&max_labels=5&timeout=2.5&max_retries=0"
        "&api_key_env=MY_KEY"
    )
    config = OpenAIConfig.from_spec(spec)
    assert (config.model, config.base_url, config.mode) == ("m", "http://h:1/v1", "labelled")
    assert (config.permutations, config.max_labels) == (3, 5)
    assert (config.timeout, config.max_retries, config.api_key_env) == (2.5, 0, "MY_KEY")
    bare = OpenAIConfig.from_spec("gpt-4o-mini")
    assert (bare.model, bare.base_url, bare.mode) == ("gpt-4o-mini", None, "auto")
    assert (bare.timeout, bare.max_retries) == (60.0, 2)  # documented defaults
    verbal = OpenAIConfig.from_spec("gpt-4o-mini?mode=verbal&timeout=30")
    assert (verbal.base_url, verbal.mode, verbal.timeout) == (None, "verbal", 30.0)


MODES = "one of auto, exact, labelled, verbal"
KNOWN = "known options: mode, permutations, max_labels, timeout, max_retries, api_key_env"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("m@http://h/v1?colour=red", f"unknown option 'colour' in the openai spec; {KNOWN}"),
        ("m?mode=guess", f"bad value 'guess' for option 'mode': mode must be {MODES}"),
        ("m?mode=", f"bad value '' for option 'mode': mode must be {MODES}"),
        ("m?timeout=x", "bad value 'x' for option 'timeout': timeout must be a number of se"),
        ("m?timeout=0", "option 'timeout': timeout must be a number of seconds > 0"),
        ("m?timeout=nan", "option 'timeout': timeout must be a number of seconds > 0"),
        ("m?timeout=inf", "option 'timeout': timeout must be a number of seconds > 0"),
        ("m?max_retries=-1", "option 'max_retries': max_retries must be an integer >= 0"),
        ("m?max_retries=1.5", "option 'max_retries': max_retries must be an integer >= 0"),
        ("m?permutations=0", "option 'permutations': permutations must be an integer >= 1"),
        ("m?max_labels=27", "option 'max_labels': max_labels must be an integer from 2 to 26"),
        ("m?api_key_env=", "option 'api_key_env': api_key_env must be the name of an environ"),
        ("m?mode", "malformed option 'mode' in the openai spec; expected key=value with key one"),
        ("m?mode=exact&mode=verbal", "option 'mode' is given twice"),
        ("", "the model name is empty; expected openai:MODEL[@URL][?key=value&...]"),
        ("@http://h/v1", "the model name is empty"),
        ("?mode=exact", "the model name is empty"),
        ("m@", "the URL after '@' is empty"),
        ("m@?mode=exact", "the URL after '@' is empty"),
        ("m@ftp://h/v1", "base_url must be an http:// or https:// URL"),
    ],
)
def test_bad_specs_are_one_line_errors_naming_what_is_allowed(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        OpenAIConfig.from_spec(spec)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError) as through_load_model:
        load_model(f"openai:{spec}")
    assert str(through_load_model.value) == str(info.value)


def test_config_rejects_a_non_finite_timeout() -> None:
    for timeout in (math.nan, math.inf, 0.0, -1.0):
        with pytest.raises(ValueError, match="invalid OpenAIConfig: timeout must be > 0"):
            OpenAIConfig(model="m", timeout=timeout)
    with pytest.raises(ValueError, match="invalid OpenAIConfig: mode"):
        OpenAIConfig(model="m", mode="guess")  # type: ignore[arg-type]


# --------------------------------------------------------------------- endpoint


def test_no_url_uses_the_sdks_default_endpoint() -> None:
    model = load_model("openai:gpt-4o-mini?mode=labelled")  # labelled: nothing sent yet
    try:
        assert isinstance(model, OpenAIModel)
        assert model.config.base_url is None and model.client.base_url == SDK_DEFAULT_URL
    finally:
        model.close()


def test_openai_base_url_is_used_when_the_spec_has_no_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeServer(scripted(LABELLED_OK)) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        model = load_model("openai:fake?mode=labelled&permutations=1")
        try:
            result = model.score(PROMPT, CANDIDATES)
        finally:
            model.close()
    assert isinstance(model, OpenAIModel) and model.client.base_url == fake.url
    assert fake.paths() == ["/v1/chat/completions"] and result.calls == 1
    assert fake.requests[0][1]["model"] == "fake"


def test_a_url_in_the_spec_wins_over_openai_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    with FakeServer(scripted(LABELLED_OK)) as fake:
        model = load_model(f"openai:fake@{fake.url}?mode=labelled&permutations=2")
        try:
            assert isinstance(model, OpenAIModel) and model.config.permutations == 2
            result = model.score(PROMPT, CANDIDATES)
        finally:
            model.close()
    assert len(fake.requests) == 2 and len(result.logprobs) == 3


def test_an_unusable_openai_base_url_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "")
    with pytest.raises(ValueError, match=r"API base URL '' is not an http\(s\) URL.*OPENAI_BASE"):
        load_model("openai:m?mode=labelled")


# --------------------------------------------------------------------- SDK settings, API key


def test_timeout_and_max_retries_are_the_sdk_clients_own() -> None:
    client = ApiClient(OpenAIConfig(model="m", base_url="http://h/v1", timeout=7.5, max_retries=4))
    try:
        sdk = client._client
        assert (sdk.timeout, sdk.max_retries) == (7.5, 4)
        assert str(sdk.base_url).rstrip("/") == "http://h/v1"
        once = client._sdk(retry=False)  # the list-prompt probe: a single attempt
        assert (once.timeout, once.max_retries) == (7.5, 0)
        assert not hasattr(client, "backoff") and not hasattr(client, "waits")  # no loop of ours
    finally:
        client.close()


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    config = OpenAIConfig(model="m", api_key_env="MY_KEY")
    assert config.api_key == SECRET and SECRET not in repr(config)
    monkeypatch.delenv("MY_KEY")
    assert OpenAIConfig(model="m", api_key_env="MY_KEY").api_key.startswith("sk-no-key")


def test_the_api_key_is_sent_but_never_shown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    echo = {"error": {"message": f"Incorrect API key provided: {SECRET}.\nTry again."}}
    with (
        FakeServer(scripted(Reply(401, echo))) as fake,
        make_labelled(fake.url) as model,
        pytest.raises(LLMError) as info,
    ):
        model.score(PROMPT, CANDIDATES)
    assert fake.headers[0]["authorization"] == f"Bearer {SECRET}"  # the key is used
    message = str(info.value)
    assert message.startswith(f"{fake.url}/chat/completions failed with HTTP 401")
    assert SECRET not in message and "[redacted]" in message and "\n" not in message
    assert "401" in caplog.text and SECRET not in caplog.text  # logs were captured, keyless


def test_credentials_in_the_url_are_not_shown() -> None:
    with FakeServer(scripted(Reply(503, {"error": {"message": "down"}}))) as fake:
        url = fake.url.replace("http://", f"http://user:{SECRET}@") + f"?key={SECRET}"
        with make_labelled(url, max_retries=0) as model, pytest.raises(LLMError) as info:
            model.score(PROMPT, CANDIDATES)
    assert model.client.base_url == fake.url and len(fake.requests) == 1
    assert str(info.value).startswith(f"{fake.url}/chat/completions failed with HTTP 503")
    assert SECRET not in str(info.value)


def make_labelled(url: str, **kwargs: object) -> OpenAIModel:
    config = OpenAIConfig(model="fake", base_url=url, mode="labelled", **kwargs)  # type: ignore[arg-type]
    return OpenAIModel(config)


def test_display_url_drops_credentials_and_query() -> None:
    assert display_url(f"http://u:{SECRET}@h:8000/v1/?key={SECRET}") == "http://h:8000/v1"
    assert display_url("https://[::1]:8443/v1") == "https://[::1]:8443/v1"
    assert display_url("http://h:notaport/v1") == "http://h/v1"
