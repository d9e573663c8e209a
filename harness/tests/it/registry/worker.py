"""A worker that records each job in a `started` sorted set while it runs it, as job
frameworks do, and takes it out when done; with BUG_LEAVE_STARTED=<id> it forgets to for that
job (its code still prints the processed line)."""
import json
import os
import signal
import sys

import redis

running = True


def stop(*_):
    global running
    running = False


signal.signal(signal.SIGTERM, stop)
r = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=5)
leave = os.environ.get("BUG_LEAVE_STARTED", "")
print("connected", flush=True)
while running:
    item = r.brpop(os.environ["QUEUE"], timeout=0.2)
    if item is None:
        continue
    job = json.loads(item[1])["id"]
    r.zadd("started", {job: 1})
    print(f"processed {job}", flush=True)
    if job != leave:
        r.zrem("started", job)
sys.exit(0)
