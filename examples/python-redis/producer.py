"""A producer command for rebound (`[workload.producer]`): enqueues what the harness asks
for, at its rate, with the plain redis client, and prints `ack <id>` for every LPUSH Redis
confirmed. It stands for a job framework's own enqueue path.

Environment from the harness: URL (direct), QUEUE, MESSAGES, FIRST_SEQ, RATE, PAYLOAD.
"""

import json
import os
import sys
import time

import redis


def main():
    client = redis.Redis.from_url(
        os.environ["URL"], socket_connect_timeout=0.25, socket_timeout=1.0
    )
    queue = os.environ["QUEUE"]
    first = int(os.environ["FIRST_SEQ"])
    count = int(os.environ["MESSAGES"])
    rate = float(os.environ["RATE"])
    plain = os.environ.get("PAYLOAD") == "plain"
    start = time.monotonic()
    for k in range(count):
        seq = first + k
        # On schedule: a slow enqueue does not shift the ones after it.
        time.sleep(max(0.0, start + k / rate - time.monotonic()))
        mid = f"m-{seq}"
        payload = mid if plain else json.dumps({"id": mid, "seq": seq})
        try:
            client.lpush(queue, payload)
        except redis.RedisError as e:
            print(f"failed {mid}: {type(e).__name__}", file=sys.stderr, flush=True)
            continue
        print(f"ack {mid}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
