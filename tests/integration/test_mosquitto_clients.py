"""test_mosquitto_clients.py - the broker against the mosquitto_pub / mosquitto_sub CLIs.

mosquitto_pub publishes and a paho subscriber checks every field that arrives;
paho publishes and mosquitto_sub's output is compared byte for byte with what
its -v / -F formats must print. A mosquitto_sub is known to be subscribed when
it prints a retained sentinel message that the test stored beforehand.
"""
import os
import queue
import subprocess
import threading

import harness
from peers_paho import PeerCase, publish_props

PUB = "/usr/bin/mosquitto_pub"
SUB = "/usr/bin/mosquitto_sub"


def cli(tool, broker, *args):
    return [tool, "-h", broker.host, "-p", str(broker.port)] + list(args)


class SubProcess:
    """A running mosquitto_sub whose stdout lines are collected in a queue."""

    def __init__(self, broker, *args):
        self.proc = subprocess.Popen(cli(SUB, broker, *args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.out = b""
        self.err = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)

    def line(self, timeout=5.0):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("mosquitto_sub printed nothing within %.1f s" % timeout)
        self.out += line
        return line

    def finish(self, timeout=5.0):
        """Wait for exit; returns (exit status, all stdout, stderr)."""
        if self.proc.stdout.closed:
            return self.proc.returncode, self.out, self.err
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self.reader.join(timeout=2)
        while not self.lines.empty():
            self.out += self.lines.get_nowait()
        self.err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc, self.out, self.err

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.finish()


class Clients(PeerCase):
    def run_cli(self, tool, broker, *args, stdin=None, expect_rc=0):
        r = subprocess.run(cli(tool, broker, *args), input=stdin, capture_output=True, timeout=10)
        if expect_rc is not None:
            self.assertEqual(r.returncode, expect_rc,
                             "%s %s: %s" % (os.path.basename(tool), " ".join(args), r.stderr))
        return r

    def start_sub(self, broker, sentinel_topic, *args):
        """mosquitto_sub, returned once it printed the retained sentinel (a first line)."""
        seed = self.peer(broker, "seed-" + sentinel_topic.replace("/", "-")[-15:])
        seed.publish(sentinel_topic, b"ready", 1, retain=True)
        seed.disconnect()
        s = SubProcess(broker, *args)
        self.addCleanup(s.kill)
        return s, s.line()

    # ---- mosquitto_pub --------------------------------------------------

    def test_pub_every_qos_both_versions(self):
        b = self.start_broker()
        s = self.peer(b, "mcp-sub")
        s.subscribe("mcp/#", 2)
        for ver in ("mqttv311", "mqttv5"):
            for q in (0, 1, 2):
                topic = "mcp/%s/%d" % (ver, q)
                payload = "payload %s q%d \u00e9" % (ver, q)
                self.run_cli(PUB, b, "-V", ver, "-q", str(q), "-t", topic, "-m", payload,
                             "-i", "mcp-%s-%d" % (ver, q))
                m = s.expect_one()
                self.assertEqual((m.topic, m.payload, m.qos, m.retain, m.dup, m.props),
                                 (topic, payload.encode(), q, False, False, {}))
        s.expect_none(0.3)

    def test_pub_retained_set_and_delete(self):
        b = self.start_broker()
        self.run_cli(PUB, b, "-q", "1", "-r", "-t", "mcr/t", "-m", "kept")
        s = self.peer(b, "mcr-s1")
        s.subscribe("mcr/t", 1)
        m = s.expect_one()
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), ("mcr/t", b"kept", 1, True))
        self.run_cli(PUB, b, "-V", "mqttv5", "-q", "1", "-r", "-t", "mcr/t", "-n")
        m = s.expect_one()
        self.assertEqual((m.payload, m.retain), (b"", False))
        s2 = self.peer(b, "mcr-s2")
        s2.subscribe("mcr/t", 1)
        s2.expect_none()

    def test_pub_username_password(self):
        b = self.start_broker()
        s = self.peer(b, "mcu-sub")
        s.subscribe("mcu/t", 1)
        self.run_cli(PUB, b, "-u", "someone", "-P", "anything", "-q", "1", "-t", "mcu/t", "-m", "x")
        self.run_cli(PUB, b, "-V", "mqttv5", "-u", "other", "-q", "1", "-t", "mcu/t", "-m", "y")
        self.assertEqual([m.payload for m in s.expect(2)], [b"x", b"y"])

    def test_pub_refused_without_anonymous(self):
        b = self.start_broker(allow_anonymous=False)
        for ver in ("mqttv311", "mqttv5"):
            r = self.run_cli(PUB, b, "-V", ver, "-q", "1", "-t", "mcn/t", "-m", "x", expect_rc=None)
            self.assertNotEqual(r.returncode, 0, ver)
            self.assertIn(b"not authori", r.stderr.lower(), ver)

    def test_pub_v5_properties(self):
        b = self.start_broker()
        s = self.peer(b, "mcd-sub")
        s.subscribe("mcd/t", 1)
        self.run_cli(PUB, b, "-V", "mqttv5", "-q", "1", "-t", "mcd/t", "-m", "{\"v\":1}",
                     "-D", "publish", "user-property", "k", "v1",
                     "-D", "publish", "user-property", "k", "v2",
                     "-D", "publish", "user-property", "a", "b",
                     "-D", "publish", "content-type", "application/json",
                     "-D", "publish", "response-topic", "mcd/reply",
                     "-D", "publish", "correlation-data", "id-7",
                     "-D", "publish", "payload-format-indicator", "1",
                     "-D", "publish", "message-expiry-interval", "120")
        m = s.expect_one()
        self.assertEqual((m.topic, m.payload, m.qos), ("mcd/t", b"{\"v\":1}", 1))
        expiry = m.props.pop("MessageExpiryInterval", None)
        self.assertIn(expiry, (119, 120))
        self.assertEqual(m.props, {"UserProperty": [("k", "v1"), ("k", "v2"), ("a", "b")],
                                   "ContentType": "application/json",
                                   "ResponseTopic": "mcd/reply",
                                   "CorrelationData": b"id-7",
                                   "PayloadFormatIndicator": 1})

    def test_pub_honours_broker_receive_maximum(self):
        # The broker announces Receive Maximum 2; mosquitto_pub must keep at most
        # 2 QoS 2 messages in flight, so all 30 go through and none is refused.
        b = self.start_broker(extra_args=["--receive-max", "2"],
                              mosquitto_conf="max_inflight_messages 2\n")
        s = self.peer(b, "mcrm-sub")
        self.assertEqual(s.connack.props.get("ReceiveMaximum"), 2)
        s.subscribe("mcrm/t", 2)
        lines = b"".join(b"line %02d\n" % i for i in range(30))
        self.run_cli(PUB, b, "-V", "mqttv5", "-q", "2", "-t", "mcrm/t", "-l", stdin=lines)
        got = s.expect(30)
        self.assertEqual([m.payload for m in got], [b"line %02d" % i for i in range(30)])
        self.assertEqual({m.qos for m in got}, {2})
        self.assertTrue(b.alive())

    # ---- mosquitto_sub --------------------------------------------------

    def test_sub_count_and_verbose_output(self):
        b = self.start_broker()
        pub = self.peer(b, "mcs-pub")
        for ver in ("mqttv311", "mqttv5"):
            base = "mcs/" + ver
            sub, first = self.start_sub(b, base + "/0", "-V", ver, "-q", "2", "-t", base + "/#",
                                        "-C", "4", "-v")
            self.assertEqual(first, base.encode() + b"/0 ready\n")
            pub.publish(base + "/a", b"m1", 0)
            pub.publish(base + "/b", b"m 2", 1)
            pub.publish(base + "/c/d", b"m3", 2)
            rc, out, err = sub.finish()
            self.assertEqual(rc, 0, err)
            want = "{0}/0 ready\n{0}/a m1\n{0}/b m 2\n{0}/c/d m3\n".format(base).encode()
            self.assertEqual(out, want)

    def test_sub_format_shows_qos_and_retain(self):
        b = self.start_broker()
        pub = self.peer(b, "mcf-pub")
        sub, first = self.start_sub(b, "mcf/0", "-q", "1", "-t", "mcf/#", "-C", "4",
                                    "-F", "%t|%q|%r|%l|%x")
        self.assertEqual(first, b"mcf/0|1|1|5|7265616479\n")
        pub.publish("mcf/a", b"\x00\xff", 2)            # downgraded to the QoS 1 subscription
        pub.publish("mcf/b", b"y", 0, retain=True)      # live: retain flag cleared
        pub.publish("mcf/c", b"", 1)
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"mcf/0|1|1|5|7265616479\nmcf/a|1|0|2|00ff\nmcf/b|0|0|1|79\nmcf/c|1|0|0|\n")

    def test_sub_v5_properties_format(self):
        b = self.start_broker()
        pub = self.peer(b, "mcv-pub")
        sub, first = self.start_sub(b, "mcv/0", "-V", "mqttv5", "-q", "1", "-t", "mcv/#",
                                    "-C", "2", "-F", "%t|%C|%R|%D|%F|%P|%p")
        self.assertEqual(first, b"mcv/0||||||ready\n")
        p = publish_props(ContentType="text/plain", ResponseTopic="mcv/reply",
                          CorrelationData=b"c-9", PayloadFormatIndicator=1,
                          UserProperty=[("k", "1"), ("k", "2"), ("z", "a b")])
        pub.publish("mcv/a", b"hello", 1, props=p)
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"mcv/0||||||ready\n"
                              b"mcv/a|text/plain|mcv/reply|c-9|1|k:1 k:2 z:a b|hello\n")

    def test_sub_and_pub_together(self):
        # The two CLIs with each other through the broker, QoS 2, both versions.
        b = self.start_broker()
        sub, first = self.start_sub(b, "mcb/0", "-V", "mqttv5", "-q", "2", "-t", "mcb/#",
                                    "-C", "3", "-F", "%t %q %p")
        self.assertEqual(first, b"mcb/0 1 ready\n")
        self.run_cli(PUB, b, "-V", "mqttv311", "-q", "2", "-t", "mcb/x", "-m", "from-311")
        self.run_cli(PUB, b, "-V", "mqttv5", "-q", "1", "-t", "mcb/y", "-m", "from-5")
        rc, out, err = sub.finish()
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, b"mcb/0 1 ready\nmcb/x 2 from-311\nmcb/y 1 from-5\n")


if __name__ == "__main__":
    harness.main()
