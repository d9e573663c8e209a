"""rebound's producer command for the Dramatiq examples (`[workload.producer]`): enqueues each
job through Dramatiq's own API (its JSON envelope, its queue declarations) and prints
`ack <id>` once the broker confirmed it.

RabbitMQ: `confirm_delivery=True`, so `enqueue` returns only after the publisher confirm.
Redis: `enqueue` returns after the EVALSHA of Dramatiq's dispatch script (appendfsync always).
The Dramatiq message id is the workload id (`m-42`), so the envelope names it. (What is left
in the queue after a run is still not named for rebound: on RabbitMQ the body is Dramatiq's
JSON envelope, with no top-level `id`; on Redis the list `dramatiq:<queue>` holds a fresh
`redis_message_id` UUID per enqueue, the envelope being in the hash `dramatiq:<queue>.msgs`.)

Environment from the harness: URL / AMQP_URL / REDIS_URL (direct), QUEUE, MESSAGES, FIRST_SEQ,
RATE.
"""

import os
import sys
import time

import tasks  # the app: its broker (from AMQP_URL / REDIS_URL) and its actor


def main():
    broker = tasks.broker
    if hasattr(broker, "confirm_delivery"):
        broker.confirm_delivery = True
    first = int(os.environ["FIRST_SEQ"])
    count = int(os.environ["MESSAGES"])
    rate = float(os.environ["RATE"])
    start = time.monotonic()
    for k in range(count):
        seq = first + k
        # On schedule: a slow enqueue does not shift the ones after it.
        time.sleep(max(0.0, start + k / rate - time.monotonic()))
        mid = f"m-{seq}"
        message = tasks.process.message(mid).copy(message_id=mid)
        try:
            broker.enqueue(message)
        except Exception as e:  # ConnectionClosed, redis.ConnectionError, pika errors...
            print(f"failed {mid}: {type(e).__name__}", file=sys.stderr, flush=True)
            continue
        print(f"ack {mid}", flush=True)
    broker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
