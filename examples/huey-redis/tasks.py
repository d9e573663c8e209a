"""A huey app on Redis, as a team would write it: a RedisHuey instance and one task, every
retry and reconnect setting left at huey's default. Run by huey's own consumer:
`python -m huey.bin.huey_consumer tasks.huey`.

What huey 3.5.4 does when Redis goes away (read in huey/consumer.py, huey/storage.py,
huey/consumer_options.py):

* One redis-py ConnectionPool per consumer, shared by its threads: the worker thread (one by
  default) waits on BRPOP `huey.redis.huey` with read_timeout = 1 s, and the scheduler thread
  runs its Lua schedule-pop script (EVALSHA on `huey.schedule.huey`) every
  scheduler_interval = 1 s. So it holds two connections, each with its own retry loop.
* Reconnect schedule, worker thread: Worker.loop catches the ConnectionError, logs `Error
  reading from queue` (ERROR, with the traceback) and sleeps `delay`, which starts at
  initial_delay = 0.1 s and is multiplied by backoff = 1.15 after every sleep, up to
  max_delay = 10 s (consumer.py Worker.sleep; consumer_options.py defaults). It announces no
  delay. The delay is reset to 0.1 s only when a task is dequeued.
  Scheduler thread: logs `Error reading schedule.` and waits for its next 1 s tick.
  redis-py 5 retries nothing by itself, but its pool reconnects once at once when it hands out
  a connection the server closed.
* Timeouts: redis-py's defaults, no socket timeout: a silently dropped connection is waited on
  for ever by the blocked BRPOP.
* In flight: BRPOP removes the task from the list; nothing keeps it while it runs. SIGTERM is
  huey's *immediate* shutdown by default (SIGINT is the graceful one, graceful_signal = 'INT'):
  the consumer exits without waiting for the task in hand, which is gone.
* Task retries: retries = 0 unless a task asks for them.

huey logs every task on its own (`Executing tasks.process: <id>`, `tasks.process: <id>
executed in 0.002s`); the scenarios turn those lines into events with `patterns`. Task ids are
the workload's (`m-42`).

Environment: REDIS_URL (rebound's proxy for this worker), WORK_MS.
"""

import os
import time

from huey import RedisHuey

WORK_S = float(os.environ.get("WORK_MS") or "0") / 1000

huey = RedisHuey(url=os.environ["REDIS_URL"])  # name "huey": the list is huey.redis.huey


@huey.task()
def process(mid):
    time.sleep(WORK_S)
