"""A Dramatiq app on Redis, as a team would write it: one actor, the broker from the
environment, every retry and reconnect setting left at Dramatiq's default.

Run by Dramatiq's own CLI (`python -m dramatiq tasks --processes 1`). What Dramatiq 2.2.1 does
with Redis (read in dramatiq/brokers/redis.py, brokers/redis/dispatch.lua, dramatiq/worker.py):

* One redis-py client and its ConnectionPool per worker process, shared by every thread: the
  two ConsumerThreads (`jobs` and its delay queue `jobs.DQ`) poll with Dramatiq's dispatch
  script (EVALSHA `fetch`: LPOP into the per-worker in-progress set
  `dramatiq:__acks__.<worker id>.jobs`), sleeping a jittered 5 ms..1 s between empty polls;
  worker threads ack (EVALSHA `ack`) on other pooled connections. So a busy worker holds
  several connections at once; every dispatch also writes the worker's heartbeat in the sorted
  set `dramatiq:__heartbeats__`.
* Reconnect schedule: a fixed delay. A ConnectionError in a fetch ends the consumer: `Consumer
  encountered a connection error: ...` (CRITICAL), `Restarting consumer in 3.00 seconds.`
  (INFO), sleep CONSUMER_RESTART_DELAY = 3000 ms (dramatiq/worker.py:38), for ever. A failed
  ack is retried every 5 s (POST_PROCESS_MESSAGE_RETRY_DELAY_SECS, worker.py:42), logging
  `Failed to post_process_message(...)` (WARNING). redis-py 5 retries nothing by itself, but
  its pool reconnects once at once when it hands out a connection the server closed.
* Timeouts: redis-py's defaults, no socket timeout (a silently dropped connection is waited on
  for ever) and no health check; `REDIS_URL` query arguments set them (idle-drop.toml).
* In flight: fetched messages sit in the in-progress set until acked. A worker that dies
  leaves them there; another worker's dispatch moves them back only once the dead worker's
  heartbeat is older than heartbeat_timeout = 60 s, and only on the 0.1 % of dispatches that
  run maintenance (maintenance_chance = 1000 per million).
* Job retries (the Retries middleware, on by default): 20 retries, exponential backoff from
  15 s to 7 days with jitter; the examples' jobs do not raise.

Environment: REDIS_URL (rebound's proxy for this worker), QUEUE, WORK_MS. QUEUE is the Redis
list Dramatiq keeps the queue in, `dramatiq:<queue>` (the workload's queue, so rebound reads
what is left there after the run); the actor's queue is the part after `dramatiq:`.
"""

import logging
import os
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

NAMESPACE = "dramatiq"  # RedisBroker's default namespace
QUEUE = os.environ.get("QUEUE") or "jobs"
if QUEUE.startswith(NAMESPACE + ":"):
    QUEUE = QUEUE[len(NAMESPACE) + 1 :]
WORK_S = float(os.environ.get("WORK_MS") or "0") / 1000

broker = RedisBroker(url=os.environ["REDIS_URL"], namespace=NAMESPACE)
dramatiq.set_broker(broker)

log = logging.getLogger("tasks")


@dramatiq.actor(queue_name=QUEUE)
def process(mid):
    time.sleep(WORK_S)
    log.info("done %s", mid)
