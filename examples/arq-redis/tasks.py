"""An arq app (asyncio, Redis), as a team would write it: one job function and a
WorkerSettings class, every retry and reconnect setting left at arq's default. Run by arq's own
CLI: `python -m arq tasks.WorkerSettings`.

What arq 0.28.0 does when Redis goes away (read in arq/worker.py and arq/connections.py):

* One redis-py asyncio ConnectionPool per worker (ArqRedis, max_connections unbounded): the poll
  loop (ZRANGEBYSCORE on the `arq:queue` sorted set every poll_delay = 0.5 s, a WATCH/MULTI per
  job it starts, the health-check key) and every running job's pipelines (up to max_jobs = 10
  at once) each take a pooled connection, so a busy worker holds several.
* Reconnect schedule: only at start. create_pool() pings and, on failure, logs `redis
  connection error HOST:PORT ERROR ..., N retries remaining...` (WARNING) and sleeps
  conn_retry_delay = 1 s, conn_retries = 5 times (arq/connections.py, RedisSettings), then
  raises. Once running, nothing retries: redis-py 5 has no retries by default and arq's poll
  loop does not catch errors, so the first failed command ends the worker with a traceback
  (python-arq/arq#386, #435). arq expects a supervisor to start it again; the scenarios play
  systemd's `Restart=always` with its default `RestartSec=100ms` (`restart` in [workers.w1]).
* In flight: a job is marked started with the key `arq:in-progress:<id>` (PSETEX job_timeout +
  10 s = 310 s) and stays in `arq:queue` until it finished. A worker that dies mid-job leaves
  the key: no worker takes the job again before it expires, 310 s later.
* SIGTERM: running jobs are cancelled; with retry_jobs = True (the default) a cancelled job
  is left in the queue (`... cancelled, will be run again`), its in-progress key deleted, so
  the next worker runs it again. Job retries: max_tries = 5.

One setting is not arq's default: job_completion_wait = 1 (arq's graceful shutdown, meant for
Kubernetes' terminationGracePeriodSeconds: on SIGTERM it stops taking jobs and waits up to 1 s
before it cancels what still runs). Without it, a SIGTERM that lands while a job records its
result cancels the task inside its shielded finish_job, close() re-raises the CancelledError and
arq exits with code 1 and a traceback; rebound's SIGTERM at the end of a run comes right after
the last job, so `clean_exit` failed on that (a real arq behaviour, not a timing setting).

arq logs every job on its own (`<t>s → <id>:process(...)`, `<t>s ← <id>:process ● `); the
scenarios turn those lines into events with `patterns`. Job ids are the workload's (`m-42`).

Environment: REDIS_URL (rebound's proxy for this worker), WORK_MS, JOB_COMPLETION_WAIT_S
(default 1), and FLAW for the flawed variants (flawed/*.toml).
"""

import asyncio
import os

from arq.connections import RedisSettings

WORK_S = float(os.environ.get("WORK_MS") or "0") / 1000
# A flaw a team could ship, for the detection matrix (flawed/*.toml):
#   no-retry-jobs: retry_jobs = False ("a job must never run twice"): a job cancelled by
#     SIGTERM is recorded as failed and removed from the queue instead of run again.
FLAW = os.environ.get("FLAW", "")


async def process(ctx, mid):
    await asyncio.sleep(WORK_S)


class WorkerSettings:
    functions = [process]
    redis_settings = RedisSettings.from_dsn(os.environ["REDIS_URL"])
    job_completion_wait = int(os.environ.get("JOB_COMPLETION_WAIT_S") or "1")
    if FLAW == "no-retry-jobs":
        retry_jobs = False
