"""test_shards.py - mote with several event loops: what crosses between them.

`mote hub --threads N` spreads sessions over N loops by client id
(docs/architecture.md, "Threads"). These tests run 4 loops on purpose (more
than this machine's cores) and check the features whose state spans loops:
shared groups with members on different loops, retained messages published
on one loop and read on others, assigned client ids that must come back to
the loop holding their session, takeover of a session by a connection that
was accepted elsewhere, and $SYS counts summed over loops. Where it matters
the test reads the broker's log (`event=connect ... shard=K`) to prove the
clients really were spread.
"""
import re
import time

from harness import mote_only
from peers_paho import PeerCase, connect_props

THREADS = ["--threads", "4"]


def shards_of(broker, ids):
    """client id -> shard, from the broker's connect log lines."""
    out = {}
    for m in re.finditer(r'event=connect .*?client="?([^" ]+)"? .*?shard=(\d+)', broker.log()):
        if m.group(1) in ids:
            out[m.group(1)] = int(m.group(2))
    return out


class Shards(PeerCase):
    @mote_only
    def test_shared_group_spans_loops_each_message_once(self):
        b = self.start_broker(extra_args=THREADS)
        ids = ["shg-member-%d" % i for i in range(8)]
        members = []
        for cid in ids:
            p = self.peer(b, cid)
            self.assertEqual(p.subscribe("$share/grp/shg/t", 1), [1])
            members.append(p)
        where = shards_of(b, set(ids))
        self.assertEqual(len(where), 8, where)
        self.assertGreaterEqual(len(set(where.values())), 3, "members not spread: %s" % where)
        pub = self.peer(b, "shg-pub")

        def round_(tag, n, live):
            want = [("%s-%03d" % (tag, i)).encode() for i in range(n)]
            for w in want:
                pub.publish("shg/t", w, 1)
            deadline = time.monotonic() + 10
            got = []
            while len(got) < n and time.monotonic() < deadline:
                for p in live:
                    got += [m.payload for m in p.collect(0.05)]
            time.sleep(0.3)
            for p in live:
                got += [m.payload for m in p.collect(0)]
            self.assertEqual(sorted(got), want, "%s: each message exactly once" % tag)
            return got

        round_("all", 80, members)
        # Half leave: by UNSUBSCRIBE and by ending the session.
        for p in members[:2]:
            self.assertEqual(p.unsubscribe(["$share/grp/shg/t"]), [0])
        for p in members[2:4]:
            p.disconnect()
        time.sleep(0.3)
        gone = members[:4]
        for p in gone[:2]:
            p.collect(0)
        round_("half", 80, members[4:])
        for p in gone[:2]:
            p.expect_none()

    @mote_only
    def test_retained_reaches_every_loop(self):
        b = self.start_broker(extra_args=THREADS)
        pub = self.peer(b, "ret-pub")
        for i in range(5):
            pub.publish("ret/%d" % i, b"v%d" % i, 1, retain=True)
        pub.publish("ret/sync", b"s", 1)  # in order after the retained ones
        time.sleep(0.3)
        ids = ["ret-sub-%d" % i for i in range(12)]
        for cid in ids:
            s = self.peer(b, cid)
            s.subscribe("ret/+", 1)
            got = sorted((m.topic, m.payload, m.retain) for m in s.expect(5))
            self.assertEqual(got, [("ret/%d" % i, b"v%d" % i, True) for i in range(5)], cid)
        self.assertGreaterEqual(len(set(shards_of(b, set(ids)).values())), 3)
        # A delete on one loop is seen on all.
        pub.publish("ret/0", b"", 1, retain=True)
        time.sleep(0.3)
        s = self.peer(b, "ret-late")
        s.subscribe("ret/+", 1)
        self.assertEqual(sorted(m.topic for m in s.expect(4)), ["ret/%d" % i for i in range(1, 5)])
        s.expect_none()

    @mote_only
    def test_assigned_ids_come_back_to_their_session(self):
        b = self.start_broker(extra_args=THREADS)
        for _ in range(8):
            p = self.unconnected(b, "")
            ack = p.connect(clean=False, props=connect_props(SessionExpiryInterval=300))
            cid = ack.props.get("AssignedClientIdentifier")
            self.assertTrue(cid)
            p.subscribe("asg/" + cid, 1)
            p.disconnect()
            again = self.unconnected(b, cid)
            ack2 = again.connect(clean=False, props=connect_props(SessionExpiryInterval=300))
            self.assertTrue(ack2.session_present, cid)
            pub = self.peer(b, "asg-pub-" + cid)
            pub.publish("asg/" + cid, b"x", 1)
            self.assertEqual(again.expect_one().payload, b"x")
            again.disconnect()

    @mote_only
    def test_takeover_and_sys_counts_over_loops(self):
        b = self.start_broker(extra_args=THREADS + ["--sys-interval", "1"])
        ids = ["sys-c-%d" % i for i in range(10)]
        peers = [self.peer(b, cid) for cid in ids]
        for p in peers:
            p.subscribe("sys/" + p.client_id, 0)
        # Each id connects again: the old connection, wherever it was
        # accepted, is taken over (0x8E) and the new one keeps the count.
        for cid, old in zip(ids, peers):
            self.peer(b, cid)
            self.assertEqual(old.disconnect_reason(), 0x8E, cid)
        mon = self.peer(b, "sys-mon")
        mon.subscribe("$SYS/broker/clients/connected", 0)
        deadline = time.monotonic() + 5
        seen = []
        while time.monotonic() < deadline:
            seen += [int(m.payload) for m in mon.collect(0.2) if not m.retain]
            if 11 in seen:
                break
        self.assertIn(11, seen, "10 clients + the monitor, summed over loops: %s" % seen)


if __name__ == "__main__":
    import harness
    harness.main()
