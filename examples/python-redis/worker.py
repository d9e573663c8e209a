"""A resilient Redis queue worker in plain Python (redis-py), as people write them.

* Reliable queue: BLMOVE from the input list into a per-worker processing list, work, report,
  then LREM. At every (re)connection whatever is left in the processing list (taken by a
  connection that died) goes back to the input list: processed again, never lost.
* Its own reconnect loop with exponential backoff and a cap, reset after a success; redis-py's
  own retries are off so the delays on the wire are exactly the announced ones.
* A silently dropped connection is noticed by the socket timeout (block time + margin) and by
  redis-py's health check (PING before a command on a connection idle that long).
* SIGTERM: the message in hand is finished, then it exits 0; in backoff it exits at once.

Its lines are deliberately not the harness's defaults; the scenarios describe them with
`[workers.w1.patterns]`. Configuration comes from the environment (see `env` below).
"""

import json
import os
import signal
import sys
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def env(name, default):
    return os.environ.get(name) or default


URL = os.environ["REDIS_URL"]
QUEUE = env("QUEUE", "jobs")
WORKER = env("WORKER_ID", "w1")
PROCESSING = f"{QUEUE}:processing:{WORKER}"
INITIAL_MS = float(env("BACKOFF_INITIAL_MS", "100"))
FACTOR = float(env("BACKOFF_FACTOR", "2"))
MAX_MS = float(env("BACKOFF_MAX_MS", "800"))
BLOCK_S = float(env("BLOCK_TIMEOUT_MS", "200")) / 1000
HEALTH_S = float(env("HEALTH_CHECK_INTERVAL_MS", "200")) / 1000
WORK_S = float(env("WORK_MS", "0")) / 1000
# Where finished ids go: stdout ("done <id>"), or a Redis list the harness reads afterwards.
RESULTS_LIST = os.environ.get("RESULTS_LIST")


def say(line):
    print(line, flush=True)


class Shutdown(Exception):
    """Raised by the SIGTERM handler while the worker is only waiting (backoff)."""


stopping = False
waiting = False


def on_sigterm(_signum, _frame):
    global stopping
    stopping = True
    if waiting:
        raise Shutdown()


def delay_ms(attempt):
    return min(INITIAL_MS * FACTOR ** (attempt - 1), MAX_MS)


def connect():
    """One attempt: a fresh client whose first PING proves the connection works.

    `single_connection_client`: a pooled client checks each connection it hands out and, if
    the server closed it, silently opens a new one at once, with no backoff. rebound showed
    that as an attempt 0.8 ms after the disconnect; one owned connection leaves every
    reconnection to the loop below.
    """
    client = redis.Redis.from_url(
        URL,
        single_connection_client=True,
        socket_connect_timeout=1.0,
        # A blocked BLMOVE answers within BLOCK_S: anything slower is a dead connection.
        socket_timeout=BLOCK_S + 0.4,
        socket_keepalive=True,
        health_check_interval=HEALTH_S,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    client.ping()
    return client


def connect_with_backoff(first):
    """Attempt 1 at start is immediate; after a loss every attempt waits its delay first."""
    global waiting
    attempt = 1
    while True:
        if not (first and attempt == 1):
            ms = delay_ms(attempt)
            say(f"INFO retry in {ms / 1000:.3f} s (attempt {attempt})")
            waiting = True
            try:
                time.sleep(ms / 1000)
            finally:
                waiting = False
        if stopping:
            raise Shutdown()
        try:
            client = connect()
            say("INFO connected to redis")
            return client
        except redis.RedisError as e:
            say(f"WARNING connect failed: {type(e).__name__}")
            attempt += 1


def requeue(client):
    """Leftovers of a connection that died go back to the consuming end of the queue."""
    n = 0
    while client.lmove(PROCESSING, QUEUE, "LEFT", "RIGHT") is not None:
        n += 1
    if n:
        say(f"INFO requeued {n}")


def message_id(payload):
    try:
        return json.loads(payload)["id"]
    except (ValueError, KeyError, TypeError):
        return payload


def consume(client):
    """Until the connection fails (raises) or SIGTERM (returns)."""
    requeue(client)
    while not stopping:
        payload = client.blmove(QUEUE, PROCESSING, BLOCK_S, "RIGHT", "LEFT")
        if payload is None:
            continue
        mid = message_id(payload)
        time.sleep(WORK_S)
        if RESULTS_LIST:
            client.lpush(RESULTS_LIST, mid)
        else:
            say(f"INFO done {mid}")
        client.lrem(PROCESSING, 1, payload)


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    first = True
    try:
        while not stopping:
            client = connect_with_backoff(first)
            first = False
            try:
                consume(client)
            except redis.RedisError as e:
                say(f"WARNING connection lost: {type(e).__name__}")
            finally:
                client.close()
    except Shutdown:
        pass
    say("INFO shutting down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
