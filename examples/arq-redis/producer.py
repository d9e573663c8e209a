"""rebound's producer command for the arq example (`[workload.producer]`): enqueues each job
with arq's own client (`ArqRedis.enqueue_job`: the pickled job under `arq:job:<id>`, its id in
the `arq:queue` sorted set, in one WATCH/MULTI/EXEC) and prints `ack <id>` once Redis answered
the EXEC. The arq job id is the workload id (`m-42`).

Environment from the harness: URL / REDIS_URL (direct), MESSAGES, FIRST_SEQ, RATE.
"""

import asyncio
import os
import sys
import time

from arq import create_pool
from arq.connections import RedisSettings


async def main():
    # No start-up retries: the producer tries each message once (rebound's contract).
    settings = RedisSettings.from_dsn(os.environ["URL"])
    settings.conn_retries = 0
    pool = await create_pool(settings)
    first = int(os.environ["FIRST_SEQ"])
    count = int(os.environ["MESSAGES"])
    rate = float(os.environ["RATE"])
    start = time.monotonic()
    for k in range(count):
        seq = first + k
        # On schedule: a slow enqueue does not shift the ones after it.
        await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
        mid = f"m-{seq}"
        try:
            job = await pool.enqueue_job("process", mid, _job_id=mid)
        except Exception as e:  # redis.ConnectionError, OSError...
            print(f"failed {mid}: {type(e).__name__}", file=sys.stderr, flush=True)
            continue
        if job is None:
            print(f"failed {mid}: already enqueued", file=sys.stderr, flush=True)
            continue
        print(f"ack {mid}", flush=True)
    await pool.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
