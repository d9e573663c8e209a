"""A Dramatiq app on RabbitMQ, as a team would write it: one actor, the broker from the
environment, every retry and reconnect setting left at Dramatiq's default.

Run by Dramatiq's own CLI (`python -m dramatiq tasks --processes 1`). What Dramatiq 2.2.1 does
when the broker goes away (read in dramatiq/worker.py and dramatiq/brokers/rabbitmq.py):

* Connections per worker process: each queue has a ConsumerThread (`jobs` and its delay queue
  `jobs.DQ`), and each ConsumerThread opens two pika BlockingConnections: the consumer's own
  (basic.consume, prefetch = 2 x worker threads) and the broker's thread-local connection it
  declares the queues on (`_ensure_queue`). Worker threads open their own thread-local
  connection only when they enqueue (a retry or a delayed message).
* Reconnect schedule: a fixed delay. ConsumerThread.run catches the ConnectionClosed, logs
  `Consumer encountered a connection error: ...` (CRITICAL) and `Restarting consumer in 3.00
  seconds.` (INFO), closes the consumer and sleeps CONSUMER_RESTART_DELAY = 3000 ms
  (dramatiq/worker.py:38, env `dramatiq_restart_delay`), for ever, no backoff, no cap. Each
  round declares the queues first; the declare is tried MAX_DECLARE_ATTEMPTS = 2 times back to
  back (brokers/rabbitmq.py:44), so a failed round is two connections a few ms apart.
* Heartbeats: pika's default (None) takes the server's proposal (RabbitMQ: 60 s).
* Messages are acked after the actor ran (RabbitMQ redelivers what a dead connection held). An
  ack that fails on a dead connection is retried every 5 s (POST_PROCESS_MESSAGE_RETRY_DELAY_SECS)
  on the consumer in place at the time; after a reconnection the old delivery tag is unknown
  ("Failed to ack message: not in known tags.") and the broker redelivers the message: a
  duplicate, never a loss.
* Job retries (the Retries middleware, on by default): 20 retries, exponential backoff from
  15 s to 7 days with jitter. A job that raises is enqueued again on the delay queue; the
  examples' jobs do not raise, so those delays never show in a run.

The actor logs `done <id>` through logging (Dramatiq's CLI sends worker output to its stderr in
its LOGFORMAT); the scenarios turn that and Dramatiq's own lines into events with `patterns`.

Environment: AMQP_URL (rebound's proxy for this worker), QUEUE (the actor's queue), WORK_MS.
"""

import logging
import os
import time

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

QUEUE = os.environ.get("QUEUE") or "jobs"
WORK_S = float(os.environ.get("WORK_MS") or "0") / 1000
broker = RabbitmqBroker(url=os.environ["AMQP_URL"])
dramatiq.set_broker(broker)

log = logging.getLogger("tasks")


@dramatiq.actor(queue_name=QUEUE)
def process(mid):
    time.sleep(WORK_S)
    log.info("done %s", mid)
