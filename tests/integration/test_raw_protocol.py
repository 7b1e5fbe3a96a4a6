"""test_raw_protocol.py - MQTT flows no client library lets a test drive, byte by byte.

Each test speaks raw MQTT (rawmqtt.py) to a real broker and asserts exact
packet types, flags, packet identifiers, reason codes and properties. The
expectations come from the MQTT 3.1.1 and 5.0 specifications (sections cited
in each test); what only mote's documentation promises is marked mote_only.
Checked against Debian's mosquitto 2.0.11 with MOTE_TEST_BROKER=mosquitto.
"""
import re
import signal

import harness
from harness import mote_only
from rawmqtt import (Closed, DISCONNECT, PUBACK, disconnect, PUBCOMP, PUBLISH, PUBREC,
                     PUBREL, SUBACK, UNSUBACK, V311, V5, RawCase, connect, is_mote, pingreq,
                     puback, pubcomp, publish, pubrec, pubrel, subscribe, unsubscribe,
                     ASSIGNED_CLIENT_IDENTIFIER, MAXIMUM_PACKET_SIZE, MAXIMUM_QOS,
                     RECEIVE_MAXIMUM, RETAIN_AVAILABLE, SERVER_KEEP_ALIVE,
                     SESSION_EXPIRY_INTERVAL, SHARED_SUBSCRIPTION_AVAILABLE,
                     SUBSCRIPTION_IDENTIFIER_AVAILABLE, TOPIC_ALIAS, TOPIC_ALIAS_MAXIMUM,
                     WILDCARD_SUBSCRIPTION_AVAILABLE)


class Redelivery(RawCase):
    """5.0 4.4 / 3.1.1 4.4: unacknowledged PUBLISH and PUBREL are resent on a
    reconnect to a kept session, with the original ids, DUP=1, in order."""

    def redelivery(self, version):
        b = self.start_broker()
        cid = "redeliver-v%d" % version
        keep = dict(clean=False, version=version)
        if version == V5:
            keep["props"] = [(SESSION_EXPIRY_INTERVAL, 300)]
        s = self.raw(b, version)
        self.assertFalse(s.connect(cid, **keep).session_present)
        self.assertEqual(s.subscribe(1, [("rd/t", 2)]), [2])

        p = self.client(b, version=V311)
        p.publish("rd/t", b"one", qos=1, packet_id=10)
        p.publish("rd/t", b"two", qos=2, packet_id=11)
        m1, m2 = s.expect(PUBLISH), s.expect(PUBLISH)
        self.assertEqual((m1.payload, m1.qos, m1.dup), (b"one", 1, False))
        self.assertEqual((m2.payload, m2.qos, m2.dup), (b"two", 2, False))
        self.assertNotEqual(m1.packet_id, m2.packet_id)
        s.close()  # no acks

        s2 = self.raw(b, version)
        self.assertTrue(s2.connect(cid, **keep).session_present)
        r1, r2 = s2.expect(PUBLISH), s2.expect(PUBLISH)
        self.assertEqual((r1.payload, r1.qos, r1.dup, r1.packet_id, r1.topic),
                         (b"one", 1, True, m1.packet_id, "rd/t"))
        self.assertEqual((r2.payload, r2.qos, r2.dup, r2.packet_id, r2.topic),
                         (b"two", 2, True, m2.packet_id, "rd/t"))
        s2.send(puback(r1.packet_id, version=version))
        s2.send(pubrec(r2.packet_id, version=version))
        pr = s2.expect(PUBREL)
        self.assertEqual(pr.packet_id, m2.packet_id)
        s2.close()  # PUBREL not completed

        s3 = self.raw(b, version)
        self.assertTrue(s3.connect(cid, **keep).session_present)
        pr = s3.expect(PUBREL)  # 4.4: the PUBREL, not the PUBLISH again
        self.assertEqual((pr.packet_id, pr.flags), (m2.packet_id, 2))
        s3.send(pubcomp(pr.packet_id, version=version))
        s3.ping()  # nothing else is pending: the next packet is the PINGRESP
        s3.expect_nothing(0.3)

    def test_redelivery_v5(self):
        self.redelivery(V5)

    def test_redelivery_v311(self):
        self.redelivery(V311)


class InboundQoS2(RawCase):
    def test_duplicate_publish_before_pubrel_delivered_once(self):
        # 5.0 4.3.3: until PUBREL, a PUBLISH with the same id is answered with
        # PUBREC and MUST NOT be delivered again; PUBREL -> PUBCOMP same id.
        b = self.start_broker()
        sub = self.client(b)
        self.assertEqual(sub.subscribe(1, [("in2/t", 0)]), [0])
        c = self.client(b)
        c.send(publish("in2/t", b"once", qos=2, packet_id=7))
        rec = c.expect(PUBREC)
        self.assertEqual((rec.packet_id, rec.reason), (7, 0))
        c.send(publish("in2/t", b"once", qos=2, packet_id=7, dup=True))
        rec = c.expect(PUBREC)
        self.assertEqual((rec.packet_id, rec.reason), (7, 0))
        c.send(pubrel(7))
        comp = c.expect(PUBCOMP)
        self.assertEqual((comp.packet_id, comp.reason), (7, 0))
        # After PUBCOMP id 7 is free again: a new PUBLISH with it is a new message.
        c.publish("in2/t", b"second", qos=2, packet_id=7)
        c.publish("in2/t", b"marker", qos=0)
        got = [sub.expect(PUBLISH).payload for _ in range(3)]
        self.assertEqual(got, [b"once", b"second", b"marker"])
        sub.expect_nothing(0.2)

    def test_pubrel_unknown_id_v5(self):
        # 5.0 3.7.2.1: PUBCOMP 0x92 Packet Identifier not found.
        b = self.start_broker()
        c = self.client(b)
        c.send(pubrel(99))
        comp = c.expect(PUBCOMP)
        self.assertEqual(comp.packet_id, 99)
        # mosquitto 2.0.11 answers 0x00 (Success), which 3.7.2.1 does not forbid.
        self.assertIn(comp.reason, self.codes(0x92, others=(0x00,)))
        c.ping()

    def test_pubrel_unknown_id_v311(self):
        # 3.1.1 4.3.3: a PUBREL is answered by PUBCOMP with the same id.
        b = self.start_broker()
        c = self.client(b, version=V311)
        c.send(pubrel(99, version=V311))
        self.assertEqual(c.recv_raw(), bytes([0x70, 0x02, 0x00, 99]))
        c.ping()


class UnknownAck(RawCase):
    def test_puback_unknown_id_ignored(self):
        # No rule makes it an error; a broker must not drop the client for it.
        b = self.start_broker()
        for version in (V5, V311):
            c = self.client(b, version=version)
            c.send(puback(4321, version=version))
            c.ping()
            c.send(puback(1, version=version))
            c.ping()
            c.disconnect()


class ReceiveMaximum(RawCase):
    def first_window_of_two(self):
        """A subscriber with Receive Maximum 2 and five QoS 1 messages for it:
        returns it and the two PUBLISH packets that arrive before any ack."""
        b = self.start_broker()
        s = self.client(b, props=[(RECEIVE_MAXIMUM, 2)])
        self.assertEqual(s.subscribe(1, [("rm/t", 1)]), [1])
        p = self.client(b, version=V311)
        for i in range(5):
            p.publish("rm/t", b"m%d" % i, qos=1, packet_id=i + 1)
        got = [s.expect(PUBLISH), s.expect(PUBLISH)]
        s.expect_nothing(0.5)
        return s, got

    def test_client_receive_maximum_first_window(self):
        # 5.0 3.1.2.11.3 / 4.9: never more than Receive Maximum unacked QoS 1/2
        # PUBLISH packets towards the client.
        s, got = self.first_window_of_two()
        self.assertNotEqual(got[0].packet_id, got[1].packet_id)
        acked = 0
        while len(got) < 5:
            s.send(puback(got[acked].packet_id))
            acked += 1
            got.append(s.expect(PUBLISH))
        self.assertEqual([m.payload for m in got], [b"m0", b"m1", b"m2", b"m3", b"m4"])
        self.assertEqual([(m.qos, m.dup) for m in got], [(1, False)] * 5)

    @mote_only
    def test_client_receive_maximum_each_ack_releases_one(self):
        # The same rule checked after every PUBACK: one ack frees one slot, so
        # exactly one more PUBLISH follows it. (mosquitto 2.0.11 sends two after
        # the first PUBACK, 3 in flight: a Receive Maximum violation.)
        s, got = self.first_window_of_two()
        for i in range(3):
            s.send(puback(got[i].packet_id))
            got.append(s.expect(PUBLISH))
            s.expect_nothing(0.3)
        s.send(puback(got[3].packet_id))
        s.send(puback(got[4].packet_id))
        s.ping()
        self.assertEqual([m.payload for m in got], [b"m0", b"m1", b"m2", b"m3", b"m4"])
        ids = [m.packet_id for m in got]
        for i in range(1, 5):  # ids in flight together differ
            self.assertNotEqual(ids[i], ids[i - 1])

    @mote_only
    def test_client_exceeds_broker_receive_maximum(self):
        # 5.0 3.3.4: more unacknowledged QoS 2 PUBLISH than the server's Receive
        # Maximum -> DISCONNECT 0x93 Receive Maximum exceeded.
        b = self.start_broker(["--receive-max", "2"])
        c = self.raw(b)
        ack = c.connect("rm-exceed")
        self.assertEqual(ack.props.get(RECEIVE_MAXIMUM), 2)
        for pid in (1, 2):
            c.send(publish("rmx/t", b"x", qos=2, packet_id=pid))
            self.assertEqual(c.expect(PUBREC).packet_id, pid)
        c.send(publish("rmx/t", b"x", qos=2, packet_id=3))
        self.expect_disconnect(c, 0x93)


class TopicAlias(RawCase):
    ARGS = (["--topic-alias-max", "2"], "max_topic_alias 2\n")

    def test_alias_set_then_used(self):
        # 5.0 3.3.2.3.4: topic + alias sets the mapping; empty topic + alias uses it.
        b = self.start_broker(*self.ARGS)
        s = self.client(b)
        self.assertEqual(s.subscribe(1, [("ta/+", 0)]), [0])
        c = self.client(b)
        self.assertEqual(c.connack.props.get(TOPIC_ALIAS_MAXIMUM), 2)
        c.send(publish("ta/x", b"a", props=[(TOPIC_ALIAS, 1)]))
        c.send(publish("", b"b", props=[(TOPIC_ALIAS, 1)]))
        c.send(publish("ta/x", b"c", props=[(TOPIC_ALIAS, 2)]))
        c.send(publish("", b"d", props=[(TOPIC_ALIAS, 2)]))
        # Remapping alias 1: later uses follow the new mapping, alias 2 is kept.
        c.send(publish("ta/y", b"e", props=[(TOPIC_ALIAS, 1)]))
        c.send(publish("", b"f", props=[(TOPIC_ALIAS, 1)]))
        c.send(publish("", b"g", props=[(TOPIC_ALIAS, 2)]))
        c.ping()
        got = [s.expect(PUBLISH) for _ in range(7)]
        # The subscriber announced no Topic Alias Maximum: full topics, no alias.
        self.assertEqual([(m.topic, m.payload) for m in got],
                         [("ta/x", b"a"), ("ta/x", b"b"), ("ta/x", b"c"), ("ta/x", b"d"),
                          ("ta/y", b"e"), ("ta/y", b"f"), ("ta/x", b"g")])
        for m in got:
            self.assertNotIn(TOPIC_ALIAS, m.props)
        s.expect_nothing(0.2)

    def test_alias_zero(self):
        b = self.start_broker(*self.ARGS)
        c = self.client(b)
        c.send(publish("ta/x", b"a", props=[(TOPIC_ALIAS, 0)]))
        # [MQTT-3.3.2-8] forbids alias 0 but names no code; mote documents 0x94,
        # mosquitto 2.0.11 sends 0x81.
        self.expect_disconnect(c, 0x94, others=(0x81,))

    def test_alias_above_maximum(self):
        b = self.start_broker(*self.ARGS)
        c = self.client(b)
        c.send(publish("ta/x", b"a", props=[(TOPIC_ALIAS, 3)]))
        self.expect_disconnect(c, 0x94)

    def test_empty_topic_unknown_alias(self):
        # 5.0 3.3.4: an alias with no mapping and an empty topic is a Protocol Error.
        b = self.start_broker(*self.ARGS)
        c = self.client(b)
        c.send(publish("", b"a", props=[(TOPIC_ALIAS, 1)]))
        self.expect_disconnect(c, 0x82)

    def test_aliases_towards_subscriber_resolve(self):
        # 5.0 3.3.2.3.4: a server may use aliases up to the client's Topic Alias
        # Maximum; every PUBLISH must resolve to the topic actually published.
        b = self.start_broker()
        s = self.client(b, props=[(TOPIC_ALIAS_MAXIMUM, 2)])
        self.assertEqual(s.subscribe(1, [("tb/#", 0)]), [0])
        c = self.client(b, version=V311)
        sent = ["tb/a", "tb/b", "tb/a", "tb/c", "tb/a", "tb/b", "tb/c"]
        for i, t in enumerate(sent):
            c.publish(t, b"%d" % i)
        aliases, resolved = {}, []
        for i in range(len(sent)):
            m = s.expect(PUBLISH)
            alias = m.props.get(TOPIC_ALIAS)
            if alias is not None:
                self.assertIn(alias, (1, 2))
                if m.topic:
                    aliases[alias] = m.topic
                else:
                    self.assertIn(alias, aliases, "alias used before it was set")
            else:
                self.assertNotEqual(m.topic, "")
            resolved.append((m.topic or aliases[alias], m.payload))
        self.assertEqual(resolved, [(t, b"%d" % i) for i, t in enumerate(sent)])


class PacketIds(RawCase):
    def test_outgoing_qos1_ids_unique_in_flight(self):
        # 2.2.1: a new PUBLISH must use an id not currently in use.
        b = self.start_broker()
        s = self.client(b)
        self.assertEqual(s.subscribe(1, [("pid/t", 1)]), [1])
        p = self.client(b, version=V311)
        for i in range(20):
            p.publish("pid/t", b"%d" % i, qos=1, packet_id=100 + i)
        got = [s.expect(PUBLISH) for _ in range(20)]
        self.assertEqual([m.payload for m in got], [b"%d" % i for i in range(20)])
        ids = [m.packet_id for m in got]
        self.assertEqual(len(set(ids)), 20, "ids reused while in flight: %r" % ids)
        self.assertNotIn(0, ids)

    def subacks_echo(self, version):
        b = self.start_broker()
        c = self.client(b, version=version)
        c.send(subscribe(0x1234, [("echo/a", 1), ("echo/b", 0)], version=version))
        ack = c.expect(SUBACK)
        self.assertEqual((ack.packet_id, ack.reasons), (0x1234, [1, 0]))
        c.send(unsubscribe(0xBEEF, ["echo/a"], version=version))
        un = c.expect(UNSUBACK)
        self.assertEqual(un.packet_id, 0xBEEF)
        if version == V5:
            self.assertEqual(un.reasons, [0x00])
            # 3.11.3: 0x11 No subscription existed; both filters answered in order.
            c.send(unsubscribe(0xFFFF, ["echo/b", "echo/none"]))
            un = c.expect(UNSUBACK)
            self.assertEqual((un.packet_id, un.reasons), (0xFFFF, [0x00, 0x11]))
        else:
            self.assertEqual(un.raw, bytes([0xB0, 0x02, 0xBE, 0xEF]))

    def test_suback_unsuback_echo_id_v5(self):
        self.subacks_echo(V5)

    def test_suback_unsuback_echo_id_v311(self):
        self.subacks_echo(V311)


class SubackCodes(RawCase):
    def test_invalid_filter_v5_per_filter(self):
        # 5.0 3.9.3: one reason code per filter; 0x8F Topic Filter invalid.
        b = self.start_broker()
        c = self.client(b)
        c.send(subscribe(5, [("a/#/b", 1), ("ok/+", 1), ("x+/y", 0)]))
        if not is_mote():
            # 0x8F reads "correctly formed but not allowed"; mosquitto 2.0.11
            # treats a misplaced wildcard as a Malformed Packet instead.
            self.expect_disconnect(c, 0x81)
            self.assert_serving(b)
            return
        ack = c.expect(SUBACK)
        self.assertEqual((ack.packet_id, ack.reasons), (5, [0x8F, 0x01, 0x8F]))
        p = self.client(b)
        p.publish("ok/1", b"granted", qos=1, packet_id=1)
        m = c.expect(PUBLISH)
        self.assertEqual((m.topic, m.payload, m.qos), ("ok/1", b"granted", 1))

    def test_invalid_filter_v311(self):
        # 3.1.1 3.9.3: 0x80 Failure for that filter, or the server closes.
        b = self.start_broker()
        c = self.client(b, version=V311)
        c.send(subscribe(5, [("a/#/b", 1), ("ok/+", 1)], version=V311))
        try:
            ack = c.recv_packet()
        except Closed:
            return
        self.assertEqual(ack.type, SUBACK, repr(ack))
        self.assertEqual((ack.packet_id, ack.reasons), (5, [0x80, 0x01]))

    @mote_only
    def test_invalid_filter_v311_mote_answers_0x80(self):
        b = self.start_broker()
        c = self.client(b, version=V311)
        self.assertEqual(c.subscribe(5, [("a/#/b", 1), ("ok/+", 1)]), [0x80, 0x01])
        c.ping()


class Session(RawCase):
    def test_second_connect_v5(self):
        # 5.0 3.1.0: a second CONNECT is a Protocol Error -> 0x82, close.
        b = self.start_broker()
        c = self.client(b)
        c.send(connect(client_id="second-v5"))
        self.expect_disconnect(c, 0x82)

    def test_second_connect_v311(self):
        # 3.1.1 [MQTT-3.1.0-2]: close.
        b = self.start_broker()
        c = self.client(b, version=V311)
        c.send(connect(version=V311, client_id="second-v311"))
        self.assertEqual(c.expect_closed(), [])

    def test_pingreq_pingresp(self):
        # 3.12 / 3.13: PINGRESP is exactly D0 00.
        b = self.start_broker()
        for version in (V5, V311):
            c = self.client(b, version=version)
            for _ in range(3):
                c.send(pingreq())
                self.assertEqual(c.recv_raw(), b"\xd0\x00")

    def test_session_expiry_set_at_disconnect_after_zero_is_refused(self):
        # 5.0 [MQTT-3.14.2-2]: Session Expiry 0 at CONNECT and non-zero at
        # DISCONNECT is a Protocol Error: the server answers DISCONNECT 0x82.
        b = self.start_broker()
        c = self.client(b, client_id="sx-zero")
        c.send(disconnect(props=[(SESSION_EXPIRY_INTERVAL, 60)]))
        self.expect_disconnect(c, 0x82)
        self.assert_serving(b)

    def test_session_expiry_lowered_at_disconnect_ends_the_session(self):
        # 5.0 3.14.2.2.2: DISCONNECT may change the interval; 0 ends the
        # session at once, so the next CONNECT finds none.
        b = self.start_broker()
        keep = dict(clean=False, props=[(SESSION_EXPIRY_INTERVAL, 300)])
        c = self.client(b, client_id="sx-lower", **keep)
        c.send(disconnect(props=[(SESSION_EXPIRY_INTERVAL, 0)]))
        # The hub closes once it has handled the DISCONNECT; a new socket's
        # CONNECT sent before that may be read first (two sockets, no order).
        c.expect_closed()
        c.close()
        again = self.raw(b)
        self.assertFalse(again.connect("sx-lower", **keep).session_present)
        # and without the change it is kept
        again.send(disconnect())
        again.close()
        third = self.raw(b)
        self.assertTrue(third.connect("sx-lower", **keep).session_present)

    @mote_only
    def test_clients_may_not_publish_to_sys(self):
        # $SYS belongs to the broker (docs/mqtt-conformance.md): a client's
        # publish there is refused with 0x87 (5.0) and never delivered.
        b = self.start_broker()
        watcher = self.client(b, client_id="sys-watch")
        self.assertEqual(watcher.subscribe(1, [("$SYS/forged", 1)]), [1])
        c = self.client(b, client_id="sys-forger")
        ack = c.publish("$SYS/forged", b"x", qos=1, packet_id=5)
        self.assertEqual((ack.type, ack.reason), (PUBACK, 0x87))
        watcher.expect_nothing(0.5)

    def test_empty_client_id_v311_needs_clean_session(self):
        # 3.1.1 [MQTT-3.1.3-8]: empty id with CleanSession 0 -> return code 2, close.
        b = self.start_broker()
        c = self.raw(b, V311)
        c.send(connect(version=V311, client_id="", clean=False))
        self.assertEqual(c.recv_raw(), bytes([0x20, 0x02, 0x00, 0x02]))
        self.assertEqual(c.expect_closed(), [])
        ok = self.raw(b, V311)
        ok.send(connect(version=V311, client_id="", clean=True))
        self.assertEqual(ok.recv_raw(), bytes([0x20, 0x02, 0x00, 0x00]))

    @mote_only
    def test_sigterm_sends_disconnect_0x8b(self):
        # 5.0 3.14.2.1: 0x8B Server shutting down, then the close; exit status 0.
        b = self.start_broker()
        c = self.client(b)
        old = self.client(b, version=V311)
        b.proc.send_signal(signal.SIGTERM)
        got = c.expect_closed(10)
        self.assertEqual([(p.type, p.reason) for p in got], [(DISCONNECT, 0x8B)])
        self.assertEqual(old.expect_closed(10), [])
        self.assertEqual(b.proc.wait(10), 0, b.log()[-3000:])


class ConnackProps(RawCase):
    @mote_only
    def test_defaults(self):
        # mote defaults; 5.0 3.2.2.3: Maximum QoS is absent when QoS 2 is supported,
        # an absent availability property means "available".
        b = self.start_broker()
        c = self.raw(b)
        ack = c.connect("")
        pr = ack.props
        self.assertEqual(pr.get(RECEIVE_MAXIMUM), 64)
        self.assertEqual(pr.get(MAXIMUM_PACKET_SIZE), 1048576)
        self.assertEqual(pr.get(TOPIC_ALIAS_MAXIMUM), 16)
        self.assertNotIn(MAXIMUM_QOS, pr)
        for pid in (RETAIN_AVAILABLE, WILDCARD_SUBSCRIPTION_AVAILABLE,
                    SUBSCRIPTION_IDENTIFIER_AVAILABLE, SHARED_SUBSCRIPTION_AVAILABLE):
            self.assertEqual(pr.get(pid, 1), 1, "property 0x%02X" % pid)
        self.assertRegex(pr.get(ASSIGNED_CLIENT_IDENTIFIER) or "", r"^auto-[0-9a-f]{16}$")
        named = self.raw(b)
        self.assertNotIn(ASSIGNED_CLIENT_IDENTIFIER, named.connect("has-an-id").props)

    @mote_only
    def test_configured_limits(self):
        b = self.start_broker(["--receive-max", "5", "--max-packet-size", "2048",
                               "--topic-alias-max", "3", "--max-keepalive", "30"])
        for keepalive in (0, 60):
            c = self.raw(b)
            pr = c.connect("limits-%d" % keepalive, keepalive=keepalive).props
            self.assertEqual((pr.get(RECEIVE_MAXIMUM), pr.get(MAXIMUM_PACKET_SIZE),
                              pr.get(TOPIC_ALIAS_MAXIMUM), pr.get(SERVER_KEEP_ALIVE)),
                             (5, 2048, 3, 30))

    def test_assigned_client_identifier_is_usable(self):
        # 5.0 3.2.2.3.7: the assigned id is unique and names the session.
        b = self.start_broker()
        ids = [self.raw(b).connect("").props.get(ASSIGNED_CLIENT_IDENTIFIER) for _ in range(2)]
        for cid in ids:
            self.assertTrue(cid and re.fullmatch(r"[\x21-\x7e]+", cid), repr(cid))
        self.assertNotEqual(ids[0], ids[1])




class Framing(RawCase):
    """Packets split across TCP reads at every kind of boundary: the broker
    reassembles them (a packet larger than its 64 KiB read buffer included),
    keeps reading large chunks after a partial packet, and delivers
    everything in order."""

    def test_stream_cut_at_odd_boundaries(self):
        import random
        import time
        b = self.start_broker()
        sub = self.client(b, version=V5)
        self.assertEqual(sub.subscribe(1, [("frame/#", 0)]), [0])
        rng = random.Random(7)
        sizes = [100] * 50 + [200_000] + [100] * 50 + [70_000, 3, 65_535] + [111] * 300
        payloads = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
        stream = b"".join(publish("frame/%d" % i, p) for i, p in enumerate(payloads))
        pub = self.client(b, version=V5)
        off = 0
        while off < len(stream):  # 1..9000-byte pieces, with short pauses
            n = rng.choice([1, 2, 7, 111, 1000, 4096, 9000])
            pub.send(stream[off:off + n])
            off += n
            if rng.random() < 0.05:
                time.sleep(0.002)
        for i, p in enumerate(payloads):
            m = sub.expect(PUBLISH, timeout=10)
            self.assertEqual((m.topic, len(m.payload)), ("frame/%d" % i, len(p)))
            self.assertEqual(m.payload, p)
        self.assert_serving(b)


if __name__ == "__main__":
    harness.main()
