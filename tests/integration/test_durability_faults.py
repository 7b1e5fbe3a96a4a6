"""test_durability_faults.py - the hub's persistence when things go wrong.

A full disk (simulated with --journal-fault-file, which makes every journal
write fail with ENOSPC while the file exists): QoS 1/2 that must be
persisted is refused (5.0: reason 0x97; 3.1.1: the connection is closed
with no ack), QoS 0 and subscriptions go on, and after the file is removed
the hub takes QoS 1 again by itself, losing nothing it acknowledged.
A journal damaged while the hub was down (a torn tail, flipped bytes): the
hub starts, says what it dropped, and keeps what lies before the damage.
Queue bounds (--max-queued, --max-queued-bytes, --queue-full) for an
offline session, with their log line and $SYS counter. Session expiry
counted in wall-clock time across restarts and down time.
All mote_only: these options and guarantees are mote's.
"""
import os
import re
import shutil
import tempfile
import time

import harness
from harness import mote_only
from durability import (LONG, DurableCase, number_of, payload, records, recovered,
                        segments, wait_until)
from peers_paho import V311, V5
from rawmqtt import PUBACK, PUBREC, Timeout, V311 as RAW311, publish

QUOTA_EXCEEDED = 0x97


class DiskFull(DurableCase):
    """--journal-fault-file: every journal write fails with ENOSPC while the file exists."""

    def fault_broker(self, extra=()):
        fdir = tempfile.mkdtemp(prefix="mote-fault-")
        self.addCleanup(shutil.rmtree, fdir, True)
        fault = os.path.join(fdir, "enospc")
        b = self.start_broker(["--journal-fault-file", fault] + list(extra))
        # A persistent subscriber: without one a QoS 1 message is not persisted.
        psub = self.persistent(b, "df-psub", create=True)
        self.assertEqual(psub.subscribe("df/#", 1), [1])
        psub.disconnect()
        return b, fault

    def sys_value(self, peer, topic, want, timeout=5.0):
        """Wait until the $SYS topic says `want` (bytes); fail with what it said."""
        ok = wait_until(lambda: any(m.topic == topic and m.payload == want
                                    for m in list(peer.msgs)), timeout, 0.05)
        self.assertTrue(ok, "%s never said %r: %r" % (
            topic, want, [m.payload for m in peer.msgs if m.topic == topic]))

    @mote_only
    def test_disk_full_refuses_persistent_qos_and_recovers(self):
        b, fault = self.fault_broker(["--sys-interval", "1"])
        live = self.peer(b, "df-live")
        self.assertEqual(live.subscribe("df/#", 1), [1])
        sysp = self.peer(b, "df-sys")
        sysp.subscribe("$SYS/broker/store/#", 0)
        pub = self.peer(b, "df-pub")
        accepted, refused = [b"before"], []
        self.assertEqual(pub.publish("df/t", b"before", 1), 0)
        self.assertEqual(live.expect_one().payload, b"before")

        open(fault, "w").close()
        failed_at = time.monotonic()
        # The hub learns of the full disk at its next write: a new persistent
        # session is written. Once the failure is known, a persistent
        # session's SUBACK does not wait for the disk. (One that reached the
        # hub before is held until the disk heals, like a PUBACK at the
        # onset: so the SUBSCRIBE goes after the log line, not before.)
        trig = self.persistent(b, "df-trigger", create=True)
        b.wait_log(r"event=journal_write_failed\b.*errno=28")
        self.assertEqual(trig.subscribe("df/none", 1), [1])
        r5 = self.raw(b)
        r5.connect("df-raw5")
        r5.send(publish("df/t", b"refused qos1", qos=1, packet_id=1))
        ack = r5.expect(PUBACK)
        self.assertEqual((ack.packet_id, ack.reason), (1, QUOTA_EXCEEDED))
        refused.append(b"refused qos1")
        r5.send(publish("df/t", b"refused qos2", qos=2, packet_id=2))
        rec = r5.expect(PUBREC)
        self.assertEqual((rec.packet_id, rec.reason), (2, QUOTA_EXCEEDED))
        refused.append(b"refused qos2")

        # 3.1.1 has no negative PUBACK: the hub closes without acknowledging.
        r3 = self.raw(b, RAW311)
        r3.connect("df-raw311", version=RAW311)
        r3.send(publish("df/t", b"refused 311", qos=1, packet_id=1, version=RAW311))
        got = r3.expect_closed(5.0)
        self.assertEqual(got, [], "3.1.1 publisher got %r instead of a bare close" % got)
        refused.append(b"refused 311")

        # QoS 0 and plain subscriptions do not need the journal.
        r5.send(publish("df/t", b"qos0 during", qos=0))
        m = live.expect_one()
        self.assertEqual((m.payload, m.qos), (b"qos0 during", 0),
                         "a refused message reached the online subscriber")
        extra = self.peer(b, "df-extra")
        self.assertEqual(extra.subscribe("df/x", 1), [1])
        r5.ping()
        self.sys_value(sysp, "$SYS/broker/store/failing", b"1")

        os.unlink(fault)
        healed_at = time.monotonic()
        deadline = healed_at + 5.0
        pid = 10
        while True:
            pid += 1
            body = b"retry %d" % pid
            r5.send(publish("df/t", body, qos=1, packet_id=pid))
            ack = r5.expect(PUBACK)
            self.assertEqual(ack.packet_id, pid)
            if ack.reason == 0:
                accepted.append(body)
                break
            self.assertEqual(ack.reason, QUOTA_EXCEEDED)
            refused.append(body)
            self.assertLess(time.monotonic(), deadline,
                            "QoS 1 still refused 5 s after the fault file went away")
            time.sleep(0.1)
        b.wait_log(r"event=journal_recovered_io")
        # A retry every 200 ms at most; not a spin that floods the log (on a full disk).
        fails = len(re.findall(r"event=(?:journal_)?write_failed\b", b.log(True)))
        bound = int((healed_at - failed_at) / 0.2) + 5
        self.assertLessEqual(fails, bound, "%d write-failure log lines in %.1f s of disk full"
                             % (fails, healed_at - failed_at))
        self.assertEqual(len(re.findall(r"event=journal_write_failed\b", b.log(True))), 1)
        for i in range(20):
            body = b"after %d" % i
            self.assertEqual(pub.publish("df/t", body, 1), 0)
            accepted.append(body)
        live_got = [m.payload for m in live.expect(len(accepted) - 1)]
        self.assertEqual(live_got, accepted[1:])
        live.expect_none(0.3)
        self.sys_value(sysp, "$SYS/broker/store/failing", b"0")
        self.sys_value(sysp, "$SYS/broker/store/refused", b"%d" % len(refused))

        b.restart(kill=True)
        s = self.persistent(b, "df-psub")
        self.assertTrue(s.connack.session_present, "df-psub lost its session")
        wait_until(lambda: {m.payload for m in s.msgs} >= set(accepted), 10, step=0.05)
        have = [m.payload for m in s.collect(0.5)]
        self.assertEqual(set(accepted) - set(have), set(), "acknowledged messages lost")
        self.assertEqual(set(refused) & set(have), set(), "refused messages delivered")

    @mote_only
    def test_publish_at_onset_of_disk_full(self):
        # The first QoS 1 publish after the disk filled is the one whose write
        # fails. It reached the hub before the failure was known, so the hub
        # may either refuse it (0x97) or hold it and acknowledge it once the
        # disk has room again (docs/durability.md: held, never acknowledged
        # while not written); never a success while the disk is full. Acks on
        # one connection keep their order either way.
        b, fault = self.fault_broker()
        r5 = self.raw(b)
        r5.connect("df-onset")
        open(fault, "w").close()
        r5.send(publish("df/t", b"onset 1", qos=1, packet_id=1))
        r5.send(publish("df/t", b"onset 2", qos=1, packet_id=2))
        acks = []       # (packet id, reason, seconds, disk still full)
        t0 = time.monotonic()
        full = True
        while len(acks) < 2:
            try:
                a = r5.expect(PUBACK, timeout=5.0)
            except Timeout:
                if not full:
                    raise
                os.unlink(fault)
                full = False
                continue
            acks.append((a.packet_id, a.reason, round(time.monotonic() - t0, 2), full))
        if full:
            os.unlink(fault)
        problems = []
        first = [a for a in acks if a[0] == 1][0]
        if first[1] == QUOTA_EXCEEDED:
            if not first[3]:
                problems.append("packet 1 refused after the disk was back")
        elif first[1] < 0x80:
            if first[3]:
                problems.append("packet 1 acknowledged while the disk was full")
        else:
            problems.append("packet 1 got reason 0x%02x" % first[1])
        if [a[0] for a in acks] != [1, 2]:
            problems.append("PUBACKs out of publish order")
        self.assertEqual(problems, [], "acks (id, reason, s, disk full): %r" % acks)

class CorruptJournal(DurableCase):
    """The hub starts on a damaged journal and keeps what lies before the damage."""

    N = 20
    JUNK = 40

    def fill(self, b):
        s = self.persistent(b, "cj-sub", create=True)
        self.assertEqual(s.subscribe("cj/t", 1), [1])
        s.disconnect()
        p = self.peer(b, "cj-pub")
        for i in range(self.N):
            self.assertEqual(p.publish("cj/t", payload(i, b"m"), 1), 0)
        # Retained messages after the queued ones: records to damage that
        # the queued messages do not depend on.
        for k in range(self.JUNK):
            self.assertLess(p.publish("cjunk/%02d" % k, payload(k, b"j"), 1, retain=True), 0x80)
        p.close()

    def layout(self, b):
        """(last segment path, its bytes, its records, end of the last record
        holding a queued message, {junk k: end of its last record})."""
        path = segments(b.data_dir)[-1]
        with open(path, "rb") as f:
            data = f.read()
        recs = records(path)

        def end_of(pos):
            for off, size in recs:
                if off <= pos < off + size:
                    return off + size
            raise AssertionError("payload at %d lies in no intact record of %s" % (pos, path))

        m_end = 0
        for i in range(self.N):
            pos = data.rfind(payload(i, b"m"))
            if pos >= 0:
                m_end = max(m_end, end_of(pos))
        junk = {}
        for k in range(self.JUNK):
            pos = data.rfind(payload(k, b"j"))
            if pos >= 0:
                junk[k] = end_of(pos)
        after = [(off, size) for off, size in recs if off >= m_end]
        self.assertGreater(len(after), 2, "no records after the queued messages in %s "
                           "(%d records) - nothing to damage safely" % (path, len(recs)))
        return path, data, recs, after, junk

    def check_recovery(self, b, junk_kept):
        rec = recovered(b)
        self.assertGreater(rec.get("dropped_bytes", 0), 0, rec)
        self.assertGreaterEqual(rec.get("damaged_segments", 0), 1, rec)
        self.assert_serving(b, tag="after-damage")
        s = self.persistent(b, "cj-sub")
        self.assertTrue(s.connack.session_present, "cj-sub lost its session")
        got = [number_of(m.payload, b"m") for m in s.expect(self.N, timeout=10)]
        s.expect_none(0.5)
        self.assertEqual(got, list(range(self.N)))
        j = self.peer(b, "cj-junk")
        j.subscribe("cjunk/#", 1)
        have = {int(m.topic.split("/")[1]) for m in j.collect(1.0)}
        self.assertEqual(set(junk_kept) - have, set(), "intact retained messages lost")

    @mote_only
    def test_truncated_tail(self):
        b = self.start_broker()
        self.fill(b)
        b.stop()
        path, data, recs, after, junk = self.layout(b)
        off, size = after[-1]
        cut = off + size // 2
        with open(path, "r+b") as f:
            f.truncate(cut)
        b.start()
        self.check_recovery(b, [k for k, end in junk.items() if end <= off])

    @mote_only
    def test_flipped_bytes_mid_segment(self):
        b = self.start_broker()
        self.fill(b)
        b.kill()
        path, data, recs, after, junk = self.layout(b)
        off, size = after[len(after) // 2]
        at = off + size // 2
        with open(path, "r+b") as f:
            f.seek(at)
            f.write(bytes(x ^ 0xFF for x in data[at:at + 4]))
        b.start()
        self.check_recovery(b, [k for k, end in junk.items() if end <= off])


class QueueBounds(DurableCase):
    """An offline session's queue is bounded; --queue-full says which end gives."""

    def bounded(self, policy, bound_args, n, size):
        b = self.start_broker(bound_args + ["--queue-full", policy, "--sys-interval", "1"])
        s = self.persistent(b, "qb-sub", create=True)
        self.assertEqual(s.subscribe("qb/t", 1), [1])
        s.disconnect()
        p = self.peer(b, "qb-pub")
        for i in range(n):
            p.publish("qb/t", (b"q%08d:" % i).ljust(size or 0, b"."), 1)
        s = self.persistent(b, "qb-sub")
        self.assertTrue(s.connack.session_present)
        wait_until(lambda: len(s.msgs) >= 1, 5)
        got = [int(m.payload[1:9]) for m in s.collect(0.7)]
        kept = len(got)
        if policy == "drop-oldest":
            self.assertEqual(got, list(range(n - kept, n)), "drop-oldest must keep the newest")
        else:
            self.assertEqual(got, list(range(kept)), "refuse-newest must keep the first")
        dropped = n - kept
        lines = re.findall(r".*level=warn .*event=queue_full .*", b.log())
        self.assertEqual(len(lines), 1, "one warning for the first drop: %r" % lines)
        self.assertRegex(lines[0], r'client="?qb-sub"? ')
        self.assertRegex(lines[0], r"policy=%s " % policy)
        self.assertRegex(lines[0], r"dropped_total=1\b")
        fields = dict(re.findall(r"(\w+)=(\d+)\b", lines[0]))
        # $SYS counter of queue-bound drops, retained, every --sys-interval.
        sysp = self.peer(b, "qb-sys")
        sysp.subscribe("$SYS/broker/messages/dropped/queue_full", 0)
        ok = wait_until(lambda: any(m.payload == b"%d" % dropped for m in sysp.msgs), 5, 0.05)
        self.assertTrue(ok, "$SYS/broker/messages/dropped/queue_full never said %d: %r"
                        % (dropped, [m.payload for m in sysp.msgs]))
        return kept, fields

    @mote_only
    def test_max_queued_drop_oldest(self):
        kept, f = self.bounded("drop-oldest", ["--max-queued", "5"], 20, None)
        self.assertEqual(kept, 5)
        self.assertEqual(f.get("queued"), "5")

    @mote_only
    def test_max_queued_refuse_newest(self):
        kept, f = self.bounded("refuse-newest", ["--max-queued", "5"], 20, None)
        self.assertEqual(kept, 5)
        self.assertEqual(f.get("queued"), "5")

    def bytes_bound(self, policy):
        # 1000-byte payloads under a 10000-byte bound: at most 10 fit; any
        # sane per-message overhead leaves at least 5.
        kept, f = self.bounded(policy, ["--max-queued", "1000", "--max-queued-bytes", "10000"],
                               20, 1000)
        self.assertTrue(5 <= kept <= 10, "kept %d messages of 1000 bytes under 10000" % kept)
        self.assertLessEqual(int(f.get("bytes", "0")), 10000, f)

    @mote_only
    def test_max_queued_bytes_drop_oldest(self):
        self.bytes_bound("drop-oldest")

    @mote_only
    def test_max_queued_bytes_refuse_newest(self):
        self.bytes_bound("refuse-newest")


class SessionExpiryRestart(DurableCase):
    """An offline session ends E seconds after it went offline, wall clock,
    whether the hub was restarted or down in between."""

    def sessions(self, b):
        for cid, exp in (("se-short", 3), ("se-early", 3), ("se-long", LONG)):
            s = self.persistent(b, cid, V5, create=True, expiry=exp)
            self.assertEqual(s.subscribe("se/t", 1), [1])
            s.disconnect()
        s = self.persistent(b, "se-311", V311)
        self.assertEqual(s.subscribe("se/t", 1), [1])
        s.disconnect()
        offline = time.monotonic()
        # The hub has taken every DISCONNECT (its offline record is staged
        # then); the QoS 1 PUBACK below waits for a later record, so after
        # it the offline times are on disk (the tests kill the hub).
        for cid in ("se-short", "se-early", "se-long", "se-311"):
            b.wait_log(r'event=disconnect .*client="?%s"?( |$)' % cid)
        p = self.peer(b, "se-pub")
        self.assertEqual(p.publish("se/t", b"offline 1", 1), 0)
        p.close()
        return offline

    def check_after(self, b, offline):
        left = offline + 3.5 - time.monotonic()
        if left > 0:
            time.sleep(left)  # the condition under test is time passing
        s = self.persistent(b, "se-short", expiry=3)
        self.assertFalse(s.connack.session_present, "3 s session alive %.1f s after going offline"
                         % (time.monotonic() - offline))
        s.expect_none(0.5)
        for cid, version in (("se-long", V5), ("se-311", V311)):
            s = self.persistent(b, cid, version)
            self.assertTrue(s.connack.session_present, "%s lost its session" % cid)
            got = [m.payload for m in s.expect(2)]
            s.expect_none(0.3)
            self.assertEqual(got, [b"offline 1", b"offline 2"], cid)

    @mote_only
    def test_expiry_counts_across_restart(self):
        b = self.start_broker()
        offline = self.sessions(b)
        b.restart()
        self.assertLess(time.monotonic() - offline, 2.0, "restart too slow for this test")
        # Still within 3 s: the short session was kept, with its queue.
        e = self.persistent(b, "se-early", expiry=3)
        self.assertTrue(e.connack.session_present, "3 s session lost in the restart")
        self.assertEqual(e.expect_one().payload, b"offline 1")
        p = self.peer(b, "se-pub2")
        self.assertEqual(p.publish("se/t", b"offline 2", 1), 0)
        self.check_after(b, offline)

    @mote_only
    def test_expiry_counts_while_hub_is_down(self):
        b = self.start_broker()
        offline = self.sessions(b)
        b.kill()
        time.sleep(max(0.0, offline + 3.5 - time.monotonic()))  # down time is the point
        b.start()
        e = self.persistent(b, "se-early", expiry=3)
        self.assertFalse(e.connack.session_present, "3 s session outlived 3.5 s of down time")
        p = self.peer(b, "se-pub2")
        self.assertEqual(p.publish("se/t", b"offline 2", 1), 0)
        self.check_after(b, offline)


if __name__ == "__main__":
    harness.main()
