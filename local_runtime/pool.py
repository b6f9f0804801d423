"""Environments for one function, scaled the way Lambda scales them.

An environment serves one invocation at a time. A request that finds every
environment busy gets a new one (a cold start); a finished environment waits
warm for the next request. A timeout or crash discards the environment, so the
request after it is cold again.
"""

from __future__ import annotations

import threading
from typing import Any

from local_runtime.config import FunctionConfig
from local_runtime.environment import ExecutionEnvironment, Invocation, LogSink, stderr_sink
from local_runtime.lambda_python import check_runtime_installed, find_interpreter


class TooManyRequestsError(RuntimeError):
    """Every allowed environment is busy: Lambda's throttle (HTTP 429)."""


class PoolClosedError(RuntimeError):
    """The pool was closed (the server is shutting down) before the invocation got an environment."""


class EnvironmentPool:
    def __init__(self, config: FunctionConfig, log_sink: LogSink = stderr_sink, max_environments: int = 10) -> None:
        """Raises LambdaPythonError (one line) when Python 3.13 or its runtime client is missing."""
        if config.runtime.startswith("python"):
            find_interpreter()
            check_runtime_installed()
        self.config = config
        self.max_environments = max_environments
        self._sink = log_sink
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)  # an environment was released, or the pool closed
        self._idle: list[ExecutionEnvironment] = []
        self._busy: set[ExecutionEnvironment] = set()
        self._retiring: set[ExecutionEnvironment] = set()  # busy when the code changed: end after this invocation
        self._closed = False

    def _acquire(self, wait: bool) -> ExecutionEnvironment:
        with self._lock:
            while True:
                if self._closed:
                    raise PoolClosedError("pool is closed")
                while self._idle:
                    env = self._idle.pop()  # most recently used first: the warmest
                    if env.alive:
                        self._busy.add(env)
                        return env
                    env.shutdown()
                if len(self._busy) < self.max_environments:
                    env = ExecutionEnvironment(self.config, self._sink)
                    self._busy.add(env)
                    return env
                if not wait:
                    raise TooManyRequestsError("Rate Exceeded.")
                self._freed.wait()  # woken by a release or by close(): no polling

    def _release(self, env: ExecutionEnvironment) -> None:
        with self._lock:
            self._busy.discard(env)
            self._freed.notify()
            retiring = env in self._retiring
            self._retiring.discard(env)
            if env.alive and not self._closed and not retiring:
                self._idle.append(env)
                return
        env.shutdown()

    def invoke(self, payload: bytes | str = b"{}", *, wait: bool = False, **kwargs: Any) -> Invocation:
        """One invocation on a warm environment if one is free, on a new one otherwise.

        Every environment busy: TooManyRequestsError, or with ``wait`` (an Event
        invocation's worker) block until one is released. PoolClosedError once
        the pool is closed.
        """
        env = self._acquire(wait)
        try:
            return env.invoke(payload, **kwargs)
        finally:
            self._release(env)

    def retire_environments(self) -> tuple[int, int]:
        """The function's code changed: idle environments end now, busy ones once their invocation returns.

        The next invocation then starts a new environment (a cold start) on the
        new code, as after a deploy. Returns (idle ended, busy to end).
        """
        with self._lock:
            idle, self._idle = self._idle, []
            self._retiring |= self._busy
            busy = len(self._busy)
        for env in idle:
            env.shutdown()
        return len(idle), busy

    @property
    def environment_count(self) -> int:
        with self._lock:
            return len(self._idle) + len(self._busy)

    def close(self) -> None:
        """Shut every environment down (busy ones end when their invocation returns)."""
        with self._lock:
            self._closed = True
            self._freed.notify_all()
            idle, self._idle = self._idle, []
        for env in idle:
            env.shutdown()

    def terminate(self) -> None:
        """Close, and end busy environments too, so their invocations return now (server shutdown).

        Each busy invocation then returns as a runtime exit and its environment's
        files are removed when it is released.
        """
        self.close()
        with self._lock:
            busy = list(self._busy)
        for env in busy:
            env.shutdown()

    def __enter__(self) -> EnvironmentPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
