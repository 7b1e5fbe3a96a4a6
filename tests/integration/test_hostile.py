"""test_hostile.py - malformed, forbidden and abusive input must cost one connection, no more.

Every case sends hostile bytes on one raw connection (rawmqtt.py), asserts the
answer the MQTT specs give (5.0: the exact reason code of the DISCONNECT or
CONNACK; 3.1.1: a close with nothing sent), and then assert_serving(): a
separate healthy subscriber and publisher still get a message through, so a
crash, a hang or a poisoned event loop fails the case that caused it. Each
test has its own broker; stopping it requires exit status 0, so a sanitizer
report in the broker fails the test too.

Spec references: 3.1.1 = OASIS MQTT 3.1.1, 5.0 = OASIS MQTT 5.0. Cases where
only mote's documentation fixes the answer are mote_only; where the spec leaves
a choice that mosquitto 2.0.11 makes differently, `others=` names its answer.
"""
import random
import socket
import threading
import time

import harness
from harness import mote_only
from rawmqtt import (MAXIMUM_PACKET_SIZE, MESSAGE_EXPIRY_INTERVAL, PUBLISH,
                     SESSION_EXPIRY_INTERVAL, TOPIC_ALIAS, V311, V5, Closed, RawCase, Timeout,
                     auth, connack, connect, is_mote, mqtt_str, packet, publish, pubrel,
                     subscribe, u16, unsubscribe, varint)

BAD_UTF8 = [
    ("0xFF byte", b"t/\xff"),
    ("U+0000", b"t/a\x00b"),          # [MQTT-1.5.4-2]
    ("surrogate U+D800", b"t/\xed\xa0\x80"),  # [MQTT-1.5.4-1]
    ("overlong '/'", b"t/\xc0\xaf"),  # not well-formed UTF-8 (Unicode 3.9)
]


def vm_kib(pid, field):
    """A /proc/PID/status field in KiB (VmRSS, VmHWM ...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("%s not in /proc/%d/status" % (field, pid))


class Hostile(RawCase):
    ARGS = None          # mote flags for this class's broker
    MOSQUITTO_CONF = ""  # the same limits for mosquitto

    def setUp(self):
        self.b = self.start_broker(self.ARGS, self.MOSQUITTO_CONF)

    def after_connect(self, version, data, code, others=()):
        """Connect, send data, expect DISCONNECT code (5.0) / a bare close (3.1.1)."""
        c = self.client(self.b, version=version)
        try:
            c.send(data)
        except Closed:
            pass
        self.expect_disconnect(c, code, others=others)
        self.assert_serving(self.b)

    def both(self, build, code, others=()):
        """after_connect for 5.0 and 3.1.1; build(version) makes the bytes."""
        for version in (V5, V311):
            with self.subTest(version=version):
                self.after_connect(version, build(version), code, others)

    def refused(self, data, codes, version=V5):
        """A hostile CONNECT: close, at most one CONNACK with a code in codes."""
        c = self.raw(self.b, version)
        try:
            c.send(data)
        except Closed:
            pass
        self.expect_refused(c, codes)
        self.assert_serving(self.b)

    def before_connect(self, data):
        """Bytes sent instead of a CONNECT: the broker closes and sends nothing."""
        c = self.raw(self.b)
        try:
            c.send(data)
        except Closed:
            pass
        self.assertEqual(c.expect_closed(raw=True), [])
        self.assert_serving(self.b)


class Framing(Hostile):
    def test_remaining_length_five_bytes_before_connect(self):
        # 1.5.5 / 2.1.4: at most 4 bytes; a 5th continuation byte is malformed.
        self.before_connect(b"\x10\xff\xff\xff\xff\x7f")

    def test_remaining_length_five_bytes_after_connect(self):
        self.both(lambda v: b"\x30\xff\xff\xff\xff\x7f", 0x81)

    def test_publish_before_connect(self):
        # [MQTT-3.1.0-1]: the first packet must be CONNECT; no CONNACK may follow.
        self.before_connect(publish("early/t", b"x", version=V311))

    def test_pingreq_before_connect(self):
        self.before_connect(b"\xc0\x00")

    def test_packet_type_zero(self):
        # 2.1.2: type 0 is reserved / forbidden; the spec names no code, so
        # Malformed Packet and Protocol Error are both accepted.
        self.both(lambda v: b"\x00\x00", (0x81, 0x82))

    def test_string_length_beyond_packet(self):
        # Topic length says 100, the packet holds 5 bytes: malformed.
        self.both(lambda v: packet(PUBLISH, 0, u16(100) + b"abc"), 0x81)

    def test_property_length_beyond_packet(self):
        body = mqtt_str("t/x") + varint(50) + b"\x01\x00"
        self.after_connect(V5, packet(PUBLISH, 0, body), 0x81)

    def test_truncated_connect_then_close(self):
        data = connect(client_id="half-a-connect", props=[(SESSION_EXPIRY_INTERVAL, 10)])
        c = self.raw(self.b)
        c.send(data[:len(data) // 2])
        c.close()
        self.assert_serving(self.b)

    def test_truncated_publish_then_close_delivers_nothing(self):
        sub = self.client(self.b)
        self.assertEqual(sub.subscribe(1, [("trunc/#", 0)]), [0])
        c = self.client(self.b, version=V311)
        head = publish("trunc/t", b"x" * 100, version=V311, remaining_length=100)
        c.send(head[:12])  # fixed header + 10 bytes of the 100 announced
        c.close()
        self.assert_serving(self.b)
        marker = self.client(self.b, version=V311)
        marker.publish("trunc/end", b"marker")
        m = sub.expect(PUBLISH)
        self.assertEqual((m.topic, m.payload), ("trunc/end", b"marker"))


class ReservedFlags(Hostile):
    def test_subscribe_flags_0000(self):
        # [MQTT-3.8.1-1]: SUBSCRIBE flags must be 0010, else malformed.
        self.both(lambda v: subscribe(1, [("f/t", 0)], version=v, flags=0), 0x81)

    def test_unsubscribe_flags_0000(self):
        self.both(lambda v: unsubscribe(1, ["f/t"], version=v, flags=0), 0x81)

    def test_pubrel_flags_0000(self):
        # [MQTT-3.6.1-1]: PUBREL flags must be 0010.
        self.both(lambda v: pubrel(1, version=v, flags=0), 0x81)

    @mote_only
    def test_pingreq_flags(self):
        # [MQTT-2.2.2-2] (3.1.1) / 2.1.3 (5.0): invalid fixed-header flags -> close /
        # malformed. (mosquitto 2.0.11 ignores them and answers PINGRESP.)
        self.both(lambda v: b"\xc1\x00", 0x81)

    def test_connect_reserved_flag(self):
        # [MQTT-3.1.2-3]: reserved connect flag must be 0 -> malformed; CONNACK optional.
        self.refused(connect(client_id="rsv", connect_flags=0x03), (0x81,))
        self.refused(connect(version=V311, client_id="rsv", connect_flags=0x03), (), V311)

    def test_connect_fixed_header_flags(self):
        self.refused(connect(client_id="fh", header_flags=1), (0x81,))

    def test_connect_will_qos_3(self):
        # [MQTT-3.1.2-12]: Will QoS 3 is malformed.
        self.refused(connect(client_id="wq3", connect_flags=0x02 | 0x04 | 0x18,
                             will=dict(topic="w/t", payload=b"x")), (0x81,))

    def test_publish_qos_3(self):
        # [MQTT-3.3.1-4]: both QoS bits set -> malformed.
        self.both(lambda v: publish("q3/t", b"x", packet_id=1, header_flags=0x06, version=v),
                  0x81)


class Strings(Hostile):
    def test_bad_utf8_topic(self):
        # 5.0 1.5.4 / 3.1.1 1.5.3: ill-formed UTF-8 -> malformed -> 0x81 / close.
        for name, topic in BAD_UTF8:
            with self.subTest(name):
                self.both(lambda v: publish(topic, b"x", version=v), 0x81)

    def test_bad_utf8_topic_filter(self):
        for name, flt in BAD_UTF8:
            with self.subTest(name):
                self.both(lambda v: subscribe(1, [(flt, 0)], version=v), 0x81)

    def test_bad_utf8_client_id(self):
        # Malformed CONNECT: close; 5.0 allows CONNACK 0x81 (or 0x85 Client Identifier
        # not valid) first, 3.1.1 return code 2 (identifier rejected).
        for name, cid in BAD_UTF8:
            with self.subTest(name):
                self.refused(connect(client_id=cid), (0x81, 0x85))
                self.refused(connect(version=V311, client_id=cid), (0x02,), V311)

    def test_wildcard_in_publish_topic(self):
        # [MQTT-3.3.2-2]: 5.0 0x90 Topic Name invalid; 3.1.1 close. 0x90 reads
        # "correctly formed but not accepted"; mosquitto 2.0.11 sends 0x82.
        for topic in ("w/+/x", "w/#", "+", "#"):
            with self.subTest(topic):
                self.both(lambda v: publish(topic, b"x", version=v), 0x90, others=(0x82,))

    def test_empty_topic_without_alias(self):
        # 5.0 3.3.2.1: zero-length topic and no alias -> Protocol Error; 3.1.1 [MQTT-4.7.3-1].
        self.both(lambda v: publish("", b"x", version=v), 0x82, others=(0x81,))


class Properties(Hostile):
    def test_unknown_property_in_publish(self):
        # 2.2.2.2: an identifier not valid for the packet -> malformed.
        data = publish("p/t", b"x", props=[(0x7F, b"\x00")])
        self.after_connect(V5, data, 0x81)

    def test_unknown_property_in_connect(self):
        self.refused(connect(client_id="up", props=[(0x7F, b"\x00")]), (0x81,))

    def test_property_not_allowed_in_publish(self):
        # Session Expiry Interval belongs to CONNECT/CONNACK/DISCONNECT only.
        data = publish("p/t", b"x", props=[(SESSION_EXPIRY_INTERVAL, 5)])
        self.after_connect(V5, data, 0x81)

    def test_duplicate_property_in_connect(self):
        # 3.1.2.11.2: Session Expiry Interval twice is a Protocol Error.
        data = connect(client_id="dup", props=[(SESSION_EXPIRY_INTERVAL, 10),
                                               (SESSION_EXPIRY_INTERVAL, 20)])
        self.refused(data, (0x82,))

    def test_duplicate_property_in_publish(self):
        # 3.3.2.3.3: Message Expiry Interval twice is a Protocol Error.
        data = publish("p/t", b"x", props=[(MESSAGE_EXPIRY_INTERVAL, 10),
                                           (MESSAGE_EXPIRY_INTERVAL, 20)])
        self.after_connect(V5, data, 0x82)


class TopicAliases(Hostile):
    ARGS = ["--topic-alias-max", "2"]
    MOSQUITTO_CONF = "max_topic_alias 2\n"

    def test_alias_zero(self):
        # [MQTT-3.3.2-8]; mote documents 0x94, mosquitto 2.0.11 sends 0x81.
        self.after_connect(V5, publish("a/t", b"x", props=[(TOPIC_ALIAS, 0)]), 0x94,
                           others=(0x81,))

    def test_alias_above_maximum(self):
        # [MQTT-3.3.2-10]: alias > Topic Alias Maximum -> 0x94.
        self.after_connect(V5, publish("a/t", b"x", props=[(TOPIC_ALIAS, 3)]), 0x94)

    def test_alias_unknown_with_empty_topic(self):
        self.after_connect(V5, publish("", b"x", props=[(TOPIC_ALIAS, 2)]), 0x82)


class ProtocolErrors(Hostile):
    def test_second_connect(self):
        # [MQTT-3.1.0-2]: Protocol Error -> 5.0 0x82, 3.1.1 close.
        self.both(lambda v: connect(version=v, client_id="again"), 0x82)

    def test_subscribe_without_topics(self):
        # [MQTT-3.8.3-2]: no payload -> Protocol Error (5.0) / close (3.1.1).
        # mosquitto 2.0.11 calls it malformed (0x81).
        self.both(lambda v: subscribe(3, [], version=v), 0x82, others=(0x81,))

    def test_unsubscribe_without_topics(self):
        # [MQTT-3.10.3-2].
        self.both(lambda v: unsubscribe(3, [], version=v), 0x82, others=(0x81,))

    def test_qos1_publish_packet_id_0(self):
        # [MQTT-2.2.1-3]: QoS > 0 needs a non-zero packet identifier.
        self.both(lambda v: publish("z/t", b"x", qos=1, packet_id=0, version=v), 0x82,
                  others=(0x81,))

    def test_connack_from_client(self):
        # CONNACK flows server -> client only.
        self.both(lambda v: connack(version=v), 0x82, others=(0x81,))

    def test_auth_in_311(self):
        # 3.1.1 2.2.1: type 15 is reserved -> close.
        self.after_connect(V311, auth(), None)

    def test_auth_without_method_v5(self):
        # 4.12: no Authentication Method in CONNECT -> AUTH is a Protocol Error.
        self.after_connect(V5, auth(0x19), 0x82, others=(0x81,))

    def test_protocol_level_6(self):
        # 5.0 3.1.2.2: unsupported version -> CONNACK 0x84 (MAY), then close.
        # mosquitto 2.0.11 answers in 3.1.1 form with return code 1.
        c = self.raw(self.b)
        c.send(connect(client_id="lvl6", proto_level=6))
        got = c.expect_closed(raw=True)
        if is_mote() or got:
            self.assertEqual(len(got), 1, got)
            self.assertEqual(got[0][0], 0x20, "not a CONNACK: %r" % got[0])
            self.assertIn(got[0][3], self.codes(0x84, others=(0x01,)), got[0].hex())
        self.assert_serving(self.b)

    @mote_only
    def test_mqisdp_level_3(self):
        # mote speaks 3.1.1 and 5.0 only; 3.1.1 [MQTT-3.1.2-2]: return code 1, close.
        # (mosquitto supports 3.1 and accepts it.)
        c = self.raw(self.b, V311)
        c.send(connect(version=V311, client_id="old31", proto_name="MQIsdp", proto_level=3))
        self.assertEqual(c.expect_closed(raw=True), [bytes([0x20, 0x02, 0x00, 0x01])])
        self.assert_serving(self.b)


class Oversize(Hostile):
    # mosquitto's max_packet_size behaves as mote documents --max-packet-size.
    ARGS = ["--max-packet-size", "1024"]
    MOSQUITTO_CONF = "max_packet_size 1024\n"

    def test_connack_announces_limit(self):
        c = self.client(self.b)
        self.assertEqual(c.connack.props.get(MAXIMUM_PACKET_SIZE), 1024)

    def test_publish_over_limit(self):
        # 5.0 3.2.2.3.6 / mote: larger inbound packet -> 0x95 (5.0) / close (3.1.1).
        self.both(lambda v: publish("big/t", b"x" * 1100, version=v), 0x95)

    def test_publish_at_limit_accepted(self):
        sub = self.client(self.b)
        self.assertEqual(sub.subscribe(1, [("big/t", 0)]), [0])
        c = self.client(self.b)
        n = 1024 - len(publish("big/t", b""))
        while len(publish("big/t", b"y" * n)) > 1024:  # the length field grew
            n -= 1
        payload = b"y" * n
        self.assertEqual(len(publish("big/t", payload)), 1024)
        c.send(publish("big/t", payload))
        c.ping()
        self.assertEqual(sub.expect(PUBLISH).payload, payload)

    def test_claims_200_mb_sends_little(self):
        # The length alone must be refused: no 200 MB buffer (peak RSS < 100 MB).
        for version in (V5, V311):
            with self.subTest(version=version):
                c = self.client(self.b, version=version)
                c.send(b"\x30" + varint(200 * 1000 * 1000) + mqtt_str("big/t") + b"abc")
                self.expect_disconnect(c, 0x95)
                hwm = vm_kib(self.b.proc.pid, "VmHWM")
                self.assertLess(hwm, 100 * 1024, "broker peak RSS %d KiB" % hwm)
                self.assert_serving(self.b)


class Slowloris(Hostile):
    ARGS = ["--connect-timeout", "2"]

    @mote_only
    def test_one_byte_a_second(self):
        # mote --connect-timeout 2: a CONNECT trickled a byte a second is cut off
        # after ~2 s, and other clients are served during the whole trickle.
        data = connect(client_id="slow-loris-client-with-a-long-id")
        c = self.raw(self.b)
        start = time.monotonic()
        closed_at = None
        for i in range(len(data)):
            tick = time.monotonic()
            try:
                c.send(data[i:i + 1])
                self.assert_serving(self.b)
                self.assertLess(time.monotonic() - tick, 0.9, "healthy client slowed down")
                # Wait out the rest of the second watching the trickling socket.
                p = c.recv_packet(timeout=max(0.01, 1.0 - (time.monotonic() - tick)))
                self.fail("the trickling client got %r" % p)
            except Closed:
                closed_at = time.monotonic() - start
                break
            except Timeout:
                pass
            if time.monotonic() - start > 6:
                break
        self.assertIsNotNone(closed_at, "still open after %.1f s" % (time.monotonic() - start))
        self.assertGreaterEqual(closed_at, 1.5)
        self.assertLessEqual(closed_at, 4.0)
        self.assert_serving(self.b)


class Load(Hostile):
    def test_200_garbage_connections(self):
        rng = random.Random(20240611)
        socks = []
        try:
            for _ in range(200):
                s = socket.create_connection((self.b.host, self.b.port), timeout=5)
                socks.append(s)
            for s in socks:
                n = rng.randrange(0, 300)
                try:
                    s.sendall(bytes(rng.randrange(256) for _ in range(n)))
                except OSError:
                    pass  # the broker may already have dropped it
        finally:
            for s in socks:
                s.close()
        self.assert_serving(self.b)
        # And again while 200 more sit half-open with a partial fixed header.
        held = [socket.create_connection((self.b.host, self.b.port), timeout=5)
                for _ in range(200)]
        try:
            for s in held:
                s.sendall(b"\x10")
            self.assert_serving(self.b)
        finally:
            for s in held:
                s.close()
        self.assert_serving(self.b)

    def test_qos0_flood_does_not_starve_others(self):
        # A slow subscriber on the flood topic reads nothing; the flooder sends
        # 10,000 QoS 0 PUBLISH; meanwhile a small publish elsewhere is delivered.
        slow = self.client(self.b, version=V311)
        self.assertEqual(slow.subscribe(1, [("flood/#", 0)]), [0])
        flooder = self.client(self.b, version=V311)
        sub = self.client(self.b)
        self.assertEqual(sub.subscribe(1, [("calm/t", 1)]), [1])
        talker = self.client(self.b, version=V311)

        one = publish("flood/x", b"f" * 64, version=V311)
        errors = []

        def flood():
            try:
                for _ in range(10):
                    flooder.send(one * 1000)
            except Exception as e:  # reported below
                errors.append(e)

        t = threading.Thread(target=flood)
        start = time.monotonic()
        t.start()
        try:
            talker.publish("calm/t", b"through the flood", qos=1, packet_id=9)
            m = sub.expect(PUBLISH, timeout=5)
            latency = time.monotonic() - start
        finally:
            t.join(30)
        self.assertFalse(t.is_alive(), "flood sender stuck")
        self.assertEqual(errors, [])
        self.assertEqual((m.topic, m.payload), ("calm/t", b"through the flood"))
        self.assertLess(latency, 5.0)
        # The flooder was not cut off: all 10,000 were read, then its PINGREQ answered.
        flooder.ping(timeout=20)
        self.assert_serving(self.b)


if __name__ == "__main__":
    harness.main()
