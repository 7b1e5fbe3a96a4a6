"""test_health.py - /healthz tells a stalled platform from a healthy one, and a
stalled platform does not stall message routing (DESIGN.md: "a slow disk must
never stall message routing").

The stall is real: another process holds an exclusive lock on DATA/mote.db,
as a backup tool or a wedged disk would, so the pipeline's database writes
wait and messages age in its queue. The hub runs with --health-max-lag 1000.
"""
import os
import sqlite3
import subprocess
import time
import unittest

import paho.mqtt.client as mqtt

from harness import HOST, main, started, wait_for


def health(b):
    status, _, body = b.api("GET", "/healthz")
    return status, body


class HealthCase(unittest.TestCase):
    def test_stalled_pipeline_is_503_and_routing_goes_on(self):
        b = started(self, http=True, extra_args=["--health-max-lag", "1000"])
        status, body = health(b)
        self.assertEqual((status, body["status"]), (200, "ok"), body)

        # A registered device that keeps sending telemetry and twin reports.
        dev = mqtt.Client(client_id="hl-1",
                          protocol=mqtt.MQTTv311)
        dev.connect(HOST, b.port)
        dev.loop_start()
        self.addCleanup(dev.loop_stop)
        self.addCleanup(dev.disconnect)
        token = b.token("read")
        wait_for(lambda: b.api("GET", "/api/v1/devices/hl-1", token=token)[0] == 200, 10,
                 "hl-1 registered")

        db = sqlite3.connect(os.path.join(b.data_dir, "mote.db"), timeout=10,
                             isolation_level=None)
        self.addCleanup(db.close)
        db.execute("BEGIN EXCLUSIVE")
        locked = True
        try:
            def stalled():
                dev.publish("$twin/hl-1/update",
                            b'{"state":{"reported":{"n":%d}}}' % int(time.monotonic() * 1000), 1)
                dev.publish("dev/hl-1/telemetry", b'{"t":1}')
                status, body = health(b)
                return status == 503 and body["status"] == "stuck"
            wait_for(stalled, 30, "/healthz 503 while mote.db is locked")
            status, body = health(b)
            self.assertGreater(body["lag_ms"], 1000, body)
            self.assertGreater(body["queue_items"], 0, body)

            # Routing does not wait for the platform: a round trip through
            # the broker with a real client works while the pipeline is stuck.
            sub = subprocess.Popen(["mosquitto_sub", "-h", HOST, "-p", str(b.port),
                                    "-t", "hl/echo", "-C", "1", "-W", "8"],
                                   stdout=subprocess.PIPE, text=True)
            self.addCleanup(lambda: sub.poll() is None and sub.kill())

            def routed():
                subprocess.run(["mosquitto_pub", "-h", HOST, "-p", str(b.port), "-t", "hl/echo",
                                "-m", "alive"], check=True, timeout=5)
                return sub.poll() is not None
            wait_for(routed, 8, "a message routed while the pipeline is stuck")
            self.assertEqual(sub.stdout.read().strip(), "alive")

            db.execute("COMMIT")
            locked = False
            wait_for(lambda: health(b)[0] == 200, 30, "/healthz back to 200 after the lock")
            self.assertEqual(health(b)[1]["status"], "ok")
        finally:
            if locked:
                db.execute("ROLLBACK")


if __name__ == "__main__":
    main()
