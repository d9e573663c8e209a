"""A resilient RabbitMQ worker in plain Python (pika's BlockingConnection), as people write
them.

* Manual acks after the work: a message is acked only once it is done, so a worker killed
  mid-batch leaves its unacked messages to the broker, which redelivers them.
* A bounded prefetch (basic.qos), a durable queue.
* Heartbeats (HEARTBEAT_SECS) so a silently dropped connection is noticed. pika checks every
  heartbeat + 5 s, not every two intervals as the spec suggests: detection takes that long.
* Its own reconnect loop: exponential backoff with a cap, reset after a success, announced
  before each wait (pika's connection_attempts is 1 so the delays on the wire are ours).
* SIGTERM: stop consuming, finish and ack the message in hand, close, exit 0.

Its output lines are the harness's defaults (`processed <id>`, `retrying in <ms>ms`), so its
scenarios need no patterns. Configuration comes from the environment.
"""

import json
import os
import signal
import sys
import time

import pika
import pika.exceptions


def env(name, default):
    return os.environ.get(name) or default


URL = os.environ["AMQP_URL"]
QUEUE = env("QUEUE", "jobs")
PREFETCH = int(env("PREFETCH", "10"))
HEARTBEAT = int(env("HEARTBEAT_SECS", "5"))
INITIAL_MS = float(env("BACKOFF_INITIAL_MS", "100"))
FACTOR = float(env("BACKOFF_FACTOR", "2"))
MAX_MS = float(env("BACKOFF_MAX_MS", "800"))
WORK_S = float(env("WORK_MS", "0")) / 1000
# Where finished ids go: stdout ("processed <id>"), or a queue the harness reads afterwards.
RESULTS_QUEUE = os.environ.get("RESULTS_QUEUE")


def say(line):
    print(line, flush=True)


class Shutdown(Exception):
    """Raised by the SIGTERM handler while the worker is only waiting (backoff)."""


stopping = False
waiting = False


def on_sigterm(_signum, _frame):
    global stopping
    stopping = True
    if waiting:
        raise Shutdown()


def delay_ms(attempt):
    return min(INITIAL_MS * FACTOR ** (attempt - 1), MAX_MS)


def connect():
    params = pika.URLParameters(URL)
    params.heartbeat = HEARTBEAT
    params.connection_attempts = 1
    params.socket_timeout = 1.0
    params.blocked_connection_timeout = 5.0
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.queue_declare(queue=QUEUE, durable=True)
    if RESULTS_QUEUE:
        channel.queue_declare(queue=RESULTS_QUEUE, durable=True)
    channel.basic_qos(prefetch_count=PREFETCH)
    return connection, channel


def connect_with_backoff(first):
    global waiting
    attempt = 1
    while True:
        if not (first and attempt == 1):
            ms = delay_ms(attempt)
            say(f"retrying in {ms:.0f}ms attempt={attempt}")
            waiting = True
            try:
                time.sleep(ms / 1000)
            finally:
                waiting = False
        if stopping:
            raise Shutdown()
        try:
            link = connect()
            say("connected")
            return link
        except pika.exceptions.AMQPError as e:
            say(f"connect failed: {type(e).__name__}")
            attempt += 1


def message_id(body):
    text = body.decode("utf-8", "replace")
    try:
        return json.loads(text)["id"]
    except (ValueError, KeyError, TypeError):
        return text


def consume(connection, channel):
    """Until the connection fails (raises) or SIGTERM (returns after a clean close)."""

    def on_message(ch, method, _properties, body):
        time.sleep(WORK_S)
        mid = message_id(body)
        if RESULTS_QUEUE:
            ch.basic_publish(
                exchange="",
                routing_key=RESULTS_QUEUE,
                body=mid.encode(),
                properties=pika.BasicProperties(delivery_mode=2),
            )
        else:
            say(f"processed {mid}")
        ch.basic_ack(delivery_tag=method.delivery_tag)

    tag = channel.basic_consume(queue=QUEUE, on_message_callback=on_message)
    while not stopping:
        # Short slices: SIGTERM is seen within 100 ms, heartbeats keep flowing.
        connection.process_data_events(time_limit=0.1)
    channel.basic_cancel(tag)
    # Unacked prefetched messages go back to the queue when the channel closes.
    connection.close()


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    first = True
    try:
        while not stopping:
            connection, channel = connect_with_backoff(first)
            first = False
            try:
                consume(connection, channel)
            except (pika.exceptions.AMQPError, OSError) as e:
                say(f"disconnected reason={type(e).__name__}")
                try:
                    connection.close()
                except Exception:  # already broken: nothing more to close
                    pass
    except Shutdown:
        pass
    say("shutting down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
