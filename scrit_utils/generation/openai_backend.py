"""Generation through any OpenAI-compatible chat-completions server.

Works with ``vllm serve``, ``transformers serve`` and hosted endpoints. Each request is one
``POST {base_url}/chat/completions`` with the chat messages as they are (the server applies the
model's chat template), the per-request ``seed``, and the stop strings. Requests run on a thread
pool of ``max_concurrency`` workers; each is retried with exponential backoff and full jitter on
429, 5xx, timeouts and connection errors (a ``Retry-After`` header is honoured, capped at the
backoff cap). Other 4xx answers fail at once with the server's message.

The API key is read only from the environment variable named by ``api_key_env`` (never passed as
a value, so it cannot end up in a profile or a notebook); a local server needs none.

Usage::

    # vllm serve Qwen/Qwen2.5-7B-Instruct --port 8000     (or: transformers serve models/toy --port 8000)
    backend = OpenAIBackend("http://127.0.0.1:8000/v1", model="Qwen/Qwen2.5-7B-Instruct")
    texts = backend.generate(requests, SamplingParams(max_new_tokens=2048))

Sampled generation is reproducible only as far as the server honours ``seed`` per request (vLLM
does; ``transformers serve`` seeds one global torch generator, so concurrent sampled requests
can interleave). Greedy decoding does not depend on it.
"""
from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Sequence

from scrit_utils.generation.base import GenerationRequest, SamplingParams, truncate_at_stop

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIBackendError(RuntimeError):
    """A request that failed for good (non-retryable answer, or retries exhausted)."""


def request_body(model: str, req: GenerationRequest, params: SamplingParams) -> dict[str, Any]:
    """The JSON body of one chat-completions request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in req.messages],
        "max_tokens": int(params.max_new_tokens),
        "temperature": 0.0 if params.greedy else float(params.temperature),
        "top_p": 1.0 if params.greedy else float(params.top_p),
        "seed": int(req.seed),
        "n": 1,
        "stream": False,
    }
    if params.stop:
        body["stop"] = list(params.stop)
    return body


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap_s, base_s * (2.0**attempt)))


def _retry_after(headers) -> float | None:
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date: fall back to our own backoff
        return None


class OpenAIBackend:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 8,
        timeout_s: float = 60,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        drop_unsupported: tuple[str, ...] = (),
    ):
        import httpx

        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.max_concurrency = int(max_concurrency)
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_cap_s = float(backoff_cap_s)
        # body keys a strict server rejects (e.g. "seed" on some hosted APIs); dropped before sending
        self.drop_unsupported = tuple(drop_unsupported)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env) if api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency),
        )
        self._rng = random.Random()  # jitter only; never affects generated text
        self._rng_lock = threading.Lock()
        self.stats = {"requests": 0, "retries": 0}

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one request ---------------------------------------------------------------
    def _sleep_before_retry(self, attempt: int, retry_after: float | None) -> None:
        with self._rng_lock:
            delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_cap_s, self._rng)
        if retry_after is not None:
            delay = min(max(delay, retry_after), self.backoff_cap_s)
        with self._rng_lock:
            self.stats["retries"] += 1
        time.sleep(delay)

    def complete(self, req: GenerationRequest, params: SamplingParams) -> str:
        """Send one request (with retries) and return the completion text, cut at the stop strings."""
        import httpx

        body = request_body(self.model, req, params)
        for k in self.drop_unsupported:
            body.pop(k, None)
        url = f"{self.base_url}/chat/completions"
        last_error = ""
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                resp = self._client.post(url, json=body)
            except httpx.TransportError as e:  # connect/read errors and timeouts
                last_error = f"{type(e).__name__}: {e}"
            else:
                if resp.status_code == 200:
                    return self._parse(resp, req, params)
                last_error = f"HTTP {resp.status_code}: {resp.text[:500]}"
                if resp.status_code in (401, 403):
                    hint = (
                        f" (API key read from ${self.api_key_env}: "
                        f"{'set' if os.environ.get(self.api_key_env) else 'NOT set'})"
                    )
                    raise OpenAIBackendError(f"request {req.id!r} to {url}: {last_error}{hint}")
                if resp.status_code not in RETRY_STATUS and resp.status_code < 500:
                    raise OpenAIBackendError(f"request {req.id!r} to {url}: {last_error}")
                retry_after = _retry_after(resp.headers)
            if attempt < self.max_retries:
                self._sleep_before_retry(attempt, retry_after)
        raise OpenAIBackendError(
            f"request {req.id!r} to {url} failed after {self.max_retries + 1} attempt(s); last error: {last_error}"
        )

    def _parse(self, resp, req: GenerationRequest, params: SamplingParams) -> str:
        try:
            data = resp.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise OpenAIBackendError(
                f"request {req.id!r}: unexpected response ({type(e).__name__}: {e}): {resp.text[:500]}"
            ) from None
        # servers exclude the stop string already; cutting again also covers servers that do not
        return truncate_at_stop(content or "", params.stop)

    # -- the Backend protocol -----------------------------------------------------------
    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True
    ) -> list[str]:
        from tqdm.auto import tqdm

        out: list[str | None] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="openai-gen") as pool:
            futures = {pool.submit(self.complete, r, params): i for i, r in enumerate(requests)}
            try:
                for fut in tqdm(as_completed(futures), total=len(futures), disable=not progress, desc="openai"):
                    out[futures[fut]] = fut.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        self.stats["requests"] += len(requests)
        return out  # type: ignore[return-value]
