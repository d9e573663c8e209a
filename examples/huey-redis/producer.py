"""rebound's producer command for the huey example (`[workload.producer]`): enqueues each task
with huey's own client (`huey.enqueue`: the pickled task LPUSHed onto `huey.redis.huey`) and
prints `ack <id>` once Redis answered the LPUSH. The huey task id is the workload id (`m-42`).

Environment from the harness: URL / REDIS_URL (direct), MESSAGES, FIRST_SEQ, RATE.
"""

import os
import sys
import time

import tasks  # the app: its RedisHuey (from REDIS_URL) and its task


def main():
    first = int(os.environ["FIRST_SEQ"])
    count = int(os.environ["MESSAGES"])
    rate = float(os.environ["RATE"])
    start = time.monotonic()
    for k in range(count):
        seq = first + k
        # On schedule: a slow enqueue does not shift the ones after it.
        time.sleep(max(0.0, start + k / rate - time.monotonic()))
        mid = f"m-{seq}"
        try:
            tasks.huey.enqueue(tasks.process.s(mid, id=mid))
        except Exception as e:  # redis.ConnectionError...
            print(f"failed {mid}: {type(e).__name__}", file=sys.stderr, flush=True)
            continue
        print(f"ack {mid}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
