"""(Not named inspect.py: that would shadow the standard library module.) Reports what the worker left behind, as a framework's own API would: every job still in
`started` as `stuck <id>`."""
import os

import redis

r = redis.Redis.from_url(os.environ["REDIS_URL"])
for job in r.zrange("started", 0, -1):
    print(f"stuck {job.decode()}")
print("done")
