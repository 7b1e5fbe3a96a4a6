"""test_paho_v311.py - the broker against Debian's paho-mqtt client speaking MQTT 3.1.1.

Every test starts its own broker and asserts exactly what arrives: topic,
payload bytes, QoS, retain and dup flags, order, and the CONNACK codes. The
expectations come from the MQTT 3.1.1 specification (section numbers in the
comments); mote_only marks a spec rule mosquitto 2.0.11 breaks (the test says how).
"""
import harness
from harness import mote_only
from peers_paho import DISCONNECT, QUIET, V311, PeerCase, Will, quiet


class Connect(PeerCase):
    def test_connect_and_disconnect(self):
        b = self.start_broker()
        p = self.peer(b, "v3-conn", V311)
        self.assertEqual((p.connack.session_present, p.connack.rc), (False, 0))
        p.disconnect()
        self.assertTrue(b.alive())
        again = self.peer(b, "v3-conn", V311)
        self.assertEqual((again.connack.session_present, again.connack.rc), (False, 0))
        again.disconnect()

    def test_anonymous_refused_without_allow_anonymous(self):
        # 3.1.1 3.2.2.3: return code 5 "not authorized", then the server closes.
        b = self.start_broker(allow_anonymous=False)
        p = self.unconnected(b, "v3-anon", V311)
        ack = p.connect(expect_rc=5)
        self.assertFalse(ack.session_present)
        self.assertTrue(p.wait_closed(), "connection left open after return code 5")

    def test_empty_client_id_with_clean_session_is_accepted(self):
        b = self.start_broker()
        p = self.peer(b, "", V311)
        self.assertEqual(p.connack.rc, 0)
        self.assertEqual(p.subscribe("v3eid/t", 1), [1])
        p.publish("v3eid/t", b"mine", 1)
        m = p.expect_one()
        self.assertEqual((m.topic, m.payload, m.qos), ("v3eid/t", b"mine", 1))

    def test_empty_client_id_without_clean_session_is_refused(self):
        # 3.1.1 3.1.3.1 [MQTT-3.1.3-8]: return code 2, identifier rejected, then close.
        b = self.start_broker()
        p = self.unconnected(b, "", V311, clean=False)
        p.connect(expect_rc=2)
        self.assertTrue(p.wait_closed())

    def test_session_takeover_closes_the_first_connection(self):
        # 3.1.1 3.1.4-2: the existing client is disconnected; no DISCONNECT exists
        # server-to-client in 3.1.1, so the first connection just closes.
        b = self.start_broker()
        first = self.peer(b, "v3-take", V311, clean=False)
        first.subscribe("v3take/t", 1)
        second = self.peer(b, "v3-take", V311, clean=False)
        self.assertTrue(second.connack.session_present)
        self.assertTrue(first.wait_closed(), "first connection not closed on takeover")
        self.assertEqual(first.packets_of(DISCONNECT), [])
        pub = self.peer(b, "v3-take-pub", V311)
        pub.publish("v3take/t", b"to-second", 1)
        m = second.expect_one()
        self.assertEqual((m.topic, m.payload, m.qos), ("v3take/t", b"to-second", 1))
        self.assertEqual(first.count(), 0)


class QoS(PeerCase):
    def test_every_publish_qos_to_every_subscription_qos(self):
        # 3.1.1 3.8.4: delivered QoS = min(published QoS, granted QoS).
        b = self.start_broker()
        subs = {}
        for s in range(3):
            subs[s] = self.peer(b, "v3q-sub%d" % s, V311)
            self.assertEqual(subs[s].subscribe("v3q/t", s), [s])
        pub = self.peer(b, "v3q-pub", V311)
        for q in range(3):
            payload = bytes([q, 0, 0xFF, 0x80]) + b"qos%d" % q
            self.assertEqual(pub.publish("v3q/t", payload, q), 0)
            for s, peer in subs.items():
                m = peer.expect_one()
                self.assertEqual((m.topic, m.payload, m.qos, m.retain, m.dup),
                                 ("v3q/t", payload, min(q, s), False, False),
                                 "publish qos %d to subscription qos %d" % (q, s))
        quiet(*subs.values())

    def test_thousand_qos1_messages_arrive_in_order(self):
        # 3.1.1 4.6: one publisher, one topic, one QoS: order is kept.
        b = self.start_broker()
        sub = self.peer(b, "v3ord-sub", V311)
        sub.subscribe("v3ord/t", 1)
        pub = self.peer(b, "v3ord-pub", V311)
        infos = [pub.publish("v3ord/t", b"%04d" % i, 1, wait=False) for i in range(1000)]
        infos[-1].wait_for_publish(20)
        got = sub.expect(1000, timeout=20)
        self.assertEqual([m.payload for m in got], [b"%04d" % i for i in range(1000)])
        self.assertEqual({(m.topic, m.qos, m.retain, m.dup) for m in got},
                         {("v3ord/t", 1, False, False)})
        sub.expect_none(0.3)


class Retained(PeerCase):
    def test_set_replace_delete(self):
        b = self.start_broker()
        pub = self.peer(b, "v3ret-pub", V311)
        pub.publish("v3ret/t", b"one", 1, retain=True)
        s1 = self.peer(b, "v3ret-s1", V311)
        s1.subscribe("v3ret/t", 1)
        m = s1.expect_one()
        # 3.1.1 3.3.1.3: sent because of a new subscription -> RETAIN 1.
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), ("v3ret/t", b"one", 1, True))

        pub.publish("v3ret/t", b"two", 1, retain=True)
        m = s1.expect_one()
        # ...but 0 when it matches an established subscription [MQTT-3.3.1-9].
        self.assertEqual((m.payload, m.retain), (b"two", False))

        s2 = self.peer(b, "v3ret-s2", V311)
        s2.subscribe("v3ret/t", 1)
        m = s2.expect_one()
        self.assertEqual((m.payload, m.retain), (b"two", True))
        s2.expect_none(0.3)   # the replaced "one" must be gone

        # Empty retained payload: forwarded as normal, and deletes the retained message.
        pub.publish("v3ret/t", b"", 1, retain=True)
        for s in (s1, s2):
            m = s.expect_one()
            self.assertEqual((m.topic, m.payload, m.retain), ("v3ret/t", b"", False))
        s3 = self.peer(b, "v3ret-s3", V311)
        s3.subscribe("v3ret/t", 1)
        s3.expect_none()

    def test_retained_qos_is_downgraded_to_the_subscription(self):
        b = self.start_broker()
        pub = self.peer(b, "v3retq-pub", V311)
        pub.publish("v3retq/t", b"q2", 2, retain=True)
        for q in (0, 1, 2):
            s = self.peer(b, "v3retq-s%d" % q, V311)
            s.subscribe("v3retq/#", q)
            m = s.expect_one()
            self.assertEqual((m.topic, m.payload, m.qos, m.retain), ("v3retq/t", b"q2", q, True))


class Wills(PeerCase):
    def test_will_sent_on_abnormal_close(self):
        b = self.start_broker()
        s = self.peer(b, "v3will-sub", V311)
        s.subscribe("v3will/#", 1)
        w = self.peer(b, "v3will-dev", V311,
                      will=Will("v3will/dev", b"gone\x00\xff", qos=2, retain=False))
        w.kill()
        m = s.expect_one()
        # QoS 2 will downgraded to the QoS 1 subscription.
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), ("v3will/dev", b"gone\x00\xff", 1, False))
        s.expect_none()

    def test_will_suppressed_on_disconnect(self):
        b = self.start_broker()
        s = self.peer(b, "v3nowill-sub", V311)
        s.subscribe("v3nowill/#", 1)
        w = self.peer(b, "v3nowill-dev", V311, will=Will("v3nowill/dev", b"gone", 1))
        w.disconnect()
        s.expect_none()
        self.assertTrue(b.alive())

    def test_will_retain(self):
        b = self.start_broker()
        live = self.peer(b, "v3wret-live", V311)
        live.subscribe("v3wret/#", 1)
        w = self.peer(b, "v3wret-dev", V311, will=Will("v3wret/dev", b"offline", 1, retain=True))
        w.kill()
        m = live.expect_one()
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), ("v3wret/dev", b"offline", 1, False))
        late = self.peer(b, "v3wret-late", V311)
        late.subscribe("v3wret/#", 1)
        m = late.expect_one()
        self.assertEqual((m.topic, m.payload, m.qos, m.retain), ("v3wret/dev", b"offline", 1, True))


class Sessions(PeerCase):
    def test_persistent_session_keeps_subscription_and_queue(self):
        b = self.start_broker()
        s = self.peer(b, "v3pers", V311, clean=False)
        self.assertFalse(s.connack.session_present)
        self.assertEqual(s.subscribe("v3pers/#", 2), [2])
        s.disconnect()

        pub = self.peer(b, "v3pers-pub", V311)
        pub.publish("v3pers/t", b"a", 1)
        pub.publish("v3pers/t", b"b", 2)
        pub.publish("v3pers/t", b"c", 1)
        pub.publish("v3pers/t", b"d", 2)

        s = self.peer(b, "v3pers", V311, clean=False)
        self.assertTrue(s.connack.session_present)
        got = s.expect(4)
        # Order is guaranteed per QoS level (3.1.1 4.6).
        self.assertEqual([m.payload for m in got if m.qos == 1], [b"a", b"c"])
        self.assertEqual([m.payload for m in got if m.qos == 2], [b"b", b"d"])
        self.assertEqual({m.topic for m in got}, {"v3pers/t"})
        s.expect_none(0.3)
        # The subscription is still there.
        pub.publish("v3pers/t", b"e", 1)
        m = s.expect_one()
        self.assertEqual((m.payload, m.qos), (b"e", 1))
        s.disconnect()

        # A clean session discards the stored one and leaves nothing behind.
        c = self.peer(b, "v3pers", V311, clean=True)
        self.assertFalse(c.connack.session_present)
        c.disconnect()
        pub.publish("v3pers/t", b"lost", 1)
        s = self.peer(b, "v3pers", V311, clean=False)
        self.assertFalse(s.connack.session_present)
        s.expect_none()

    def test_clean_session_forgets_subscriptions(self):
        b = self.start_broker()
        s = self.peer(b, "v3clean", V311, clean=True)
        s.subscribe("v3clean/t", 1)
        s.disconnect()
        pub = self.peer(b, "v3clean-pub", V311)
        pub.publish("v3clean/t", b"while-away", 1)
        s = self.peer(b, "v3clean", V311, clean=True)
        self.assertFalse(s.connack.session_present)
        pub.publish("v3clean/t", b"after", 1)
        s.expect_none()


class Subscriptions(PeerCase):
    def test_wildcards(self):
        # 3.1.1 4.7: '+' is one level (possibly empty), '#' is this level and below.
        b = self.start_broker()
        filters = {"plus": "v3wc/+/c", "hash": "v3wc/#", "plus_end": "v3wc/+", "two": "+/+"}
        topics = ["v3wc/b/c", "v3wc/x/c", "v3wc/b", "v3wc", "v3wc/b/c/d", "o/b/c", "v3wc//c", "v3wc/"]
        want = {
            "plus": ["v3wc/b/c", "v3wc/x/c", "v3wc//c"],
            "hash": ["v3wc/b/c", "v3wc/x/c", "v3wc/b", "v3wc", "v3wc/b/c/d", "v3wc//c", "v3wc/"],
            "plus_end": ["v3wc/b", "v3wc/"],
            "two": ["v3wc/b", "v3wc/"],
        }
        subs = {}
        for name, f in filters.items():
            subs[name] = self.peer(b, "v3wc-" + name, V311)
            self.assertEqual(subs[name].subscribe(f, 1), [1])
        pub = self.peer(b, "v3wc-pub", V311)
        for i, t in enumerate(topics):
            pub.publish(t, b"m%d" % i, 1)
        for name, s in subs.items():
            got = s.expect(len(want[name]))
            self.assertEqual([m.topic for m in got], want[name], name)
            self.assertEqual([m.payload for m in got],
                             [b"m%d" % topics.index(t) for t in want[name]], name)
        quiet(*subs.values())

    def test_dollar_topics_not_matched_by_leading_wildcards(self):
        # [MQTT-4.7.2-1]: '#' and '+/...' do not match topics starting with '$'.
        b = self.start_broker()
        hash_sub = self.peer(b, "v3dol-hash", V311)
        hash_sub.subscribe("#", 1)
        plus_sub = self.peer(b, "v3dol-plus", V311)
        plus_sub.subscribe("+/x", 1)
        explicit = self.peer(b, "v3dol-exp", V311)
        explicit.subscribe("$v3dol/+", 1)
        pub = self.peer(b, "v3dol-pub", V311)
        pub.publish("$v3dol/x", b"dollar", 1)
        m = explicit.expect_one()
        self.assertEqual((m.topic, m.payload), ("$v3dol/x", b"dollar"))
        quiet(hash_sub, plus_sub)

    @mote_only
    def test_overlapping_subscriptions(self):
        # 3.1.1 3.3.5 [MQTT-3.3.5-1]: at least one copy at the highest matching
        # QoS; further copies (one per subscription) are allowed. mosquitto
        # 2.0.11 sends a 3.1.1 client a single QoS 0 copy here, against the spec.
        b = self.start_broker()
        s = self.peer(b, "v3ov", V311)
        self.assertEqual(s.subscribe([("v3ov/+", 0), ("v3ov/#", 2)]), [0, 2])
        pub = self.peer(b, "v3ov-pub", V311)
        pub.publish("v3ov/t", b"x", 2)
        got = s.expect(1) + s.collect(QUIET)
        self.assertEqual({(m.topic, m.payload) for m in got}, {("v3ov/t", b"x")})
        self.assertIn(sorted(m.qos for m in got), ([2], [0, 2]))

    def test_unsubscribe(self):
        b = self.start_broker()
        s = self.peer(b, "v3un", V311)
        s.subscribe("v3un/a", 1)
        s.subscribe("v3un/b", 1)
        self.assertEqual(s.unsubscribe("v3un/a"), [])
        self.assertEqual(s.unsubscribe("v3un/never"), [])   # not an error in 3.1.1
        pub = self.peer(b, "v3un-pub", V311)
        pub.publish("v3un/a", b"a", 1)
        pub.publish("v3un/b", b"b", 1)
        m = s.expect_one()
        self.assertEqual((m.topic, m.payload), ("v3un/b", b"b"))
        s.expect_none()


class Limits(PeerCase):
    def test_oversize_publish_closes_only_that_client(self):
        b = self.start_broker(extra_args=["--max-packet-size", "1024"],
                              mosquitto_conf="max_packet_size 1024\n")
        s = self.peer(b, "v3big-sub", V311)
        s.subscribe("v3big/#", 1)
        big = self.peer(b, "v3big-pub", V311)
        big.publish("v3big/small", b"s" * 100, 1)
        m = s.expect_one()
        self.assertEqual((m.topic, m.payload), ("v3big/small", b"s" * 100))
        big.publish("v3big/large", b"L" * 2000, 1, wait=False)
        self.assertTrue(big.wait_closed(), "oversize publisher not closed")
        self.assertEqual(big.packets_of(DISCONNECT), [])   # 3.1.1: close, no DISCONNECT
        s.expect_none()
        self.assertTrue(b.alive())
        self.assert_serving(b, V311, "v3big")


if __name__ == "__main__":
    harness.main()
