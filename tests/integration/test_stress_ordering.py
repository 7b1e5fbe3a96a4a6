"""test_stress_ordering.py - ordering and completeness of delivery under concurrency.

Many paho-mqtt 1.6.1 clients (each with its own loop_start thread) publish and
subscribe at the same time, so a broker that spreads connections over several
event loops (`mote hub --threads N`) has publishers and subscribers on
different loops and must hand messages between them. The checks are the
guarantees that handing-over could break:

- MQTT 4.6 (3.1.1 and 5.0): messages from one publisher on one topic at one QoS
  reach each subscriber in the order they were published;
- 4.3: QoS 1 arrives (no duplicates are expected while nothing reconnects),
  QoS 2 arrives exactly once; QoS 0 arrives too while no output buffer fills;
- 3.1.4 / 4.1: a persistent session that is taken over (or dropped and
  resumed) while messages stream in ends up with every message, first arrivals
  in order, duplicates only as redeliveries.

Expectations are computed from the subscription filters by a topic matcher
written here (4.7), and compared exactly: the failure message names the first
missing, duplicated or out-of-order message of each subscriber. Payloads carry
"pub:seq" (some padded past 512 bytes, which mote stores differently) and are
compared byte for byte, so a message corrupted between loops fails too.

Each scenario runs against `mote hub --threads 4` (more loops than the two
cores of the test machine, on purpose) and `--threads 1`, with limits raised so
that nothing is refused. With MOTE_TEST_BROKER=mosquitto the same checks run
against mosquitto (the --threads 1 class is skipped there: it would be the same
run twice), which is how the test itself is checked.

MOTE_STRESS_SCALE (default 1) multiplies the message counts: use 0.3 under the
sanitizer build to keep the run short, or 3 for a longer soak. Every wait has a
deadline; a run that stalls fails with counts instead of hanging.
"""
import os
import random
import socket
import threading
import time
import unittest
from collections import defaultdict

import harness

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5

SCALE = float(os.environ.get("MOTE_STRESS_SCALE", "1"))
CONNECT_WAIT = 10.0     # seconds for a CONNACK / SUBACK
DRAIN_WAIT = 30.0 * max(1.0, SCALE)   # seconds for a scenario's messages to arrive
QUIET = 0.5             # window in which a duplicate or stray message would show
INFLIGHT = 32           # paho's own window for outgoing QoS 1/2 (below --receive-max 64)

# Limits raised on both brokers so that no message is refused or dropped for
# want of a window or a queue slot: what is checked is the hand-over.
MOTE_LIMITS = ["--max-inflight", "1000", "--max-queued", "100000"]
MOSQUITTO_LIMITS = "max_inflight_messages 1000\nmax_queued_messages 100000\n"


def scaled(n, minimum=1):
    return max(minimum, int(round(n * SCALE)))


def topic_matches(filt, topic):
    """MQTT 4.7: does `filt` (with + and #) match the topic name `topic`?"""
    f = filt.split("/")
    t = topic.split("/")
    if topic.startswith("$") and f[0] in ("+", "#"):
        return False                       # [MQTT-4.7.2-1]
    for i, part in enumerate(f):
        if part == "#":
            return True                    # also matches the parent level
        if i >= len(t):
            return False
        if part != "+" and part != t[i]:
            return False
    return len(f) == len(t)


def make_payload(pub, seq):
    """"pub:seq", padded past 512 bytes for every 7th message (mote copies
    payloads up to 512 B into its output arena and shares larger ones)."""
    head = b"%d:%d" % (pub, seq)
    if seq % 7 == 3:
        return head + b":" + bytes((pub * 31 + seq + i) % 251 for i in range(600))
    return head


def parse_payload(payload):
    """(pub, seq) from a payload, or None when it is not one of ours."""
    try:
        parts = payload.split(b":", 2)
        return int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        return None


def first_difference(got, want):
    """Describe the first place where the seq list `got` differs from `want`."""
    seen = set()
    want_set = set(want)
    for i in range(max(len(got), len(want))):
        g = got[i] if i < len(got) else None
        w = want[i] if i < len(want) else None
        if g == w:
            seen.add(g)
            continue
        if g is None:
            return "missing seq %d and %d more after it (got %d of %d)" % (
                w, len(want) - i - 1, len(got), len(want))
        if g in seen:
            return "duplicate: seq %d again at position %d" % (g, i)
        if g not in want_set:
            return "unexpected seq %d at position %d" % (g, i)
        if i > 0 and g < got[i - 1]:
            return "out of order: seq %d after seq %d (position %d)" % (g, got[i - 1], i)
        if w not in set(got):
            return "missing seq %d (position %d got seq %d)" % (w, i, g)
        return "out of order: seq %d at position %d, where seq %d was due" % (g, i, w)
    return None


class Client:
    """One paho connection with its own loop_start thread.

    Messages are recorded in arrival order as (topic, payload, qos, dup); the
    callbacks only append, so the loop thread never waits on the test."""

    def __init__(self, broker, client_id, version, clean=True, session_expiry=None):
        self.broker = broker
        self.client_id = client_id
        self.version = version
        self.clean = clean
        self.session_expiry = session_expiry
        if version == V5:
            self.c = mqtt.Client(client_id=client_id, protocol=V5,
                                 reconnect_on_failure=False)
        else:
            self.c = mqtt.Client(client_id=client_id, protocol=V311, clean_session=clean,
                                 reconnect_on_failure=False)
        self.c.max_inflight_messages_set(INFLIGHT)
        self.got = []
        self.connected = threading.Event()
        self.gone = threading.Event()
        self.connack = None              # (session_present, rc)
        self.subacks = {}                # mid -> granted codes
        self.sub_cv = threading.Condition()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.started = False

    def _on_connect(self, client, userdata, flags, rc, *props):
        # rc is an int in 3.1.1 and a ReasonCodes object in 5.0.
        code = rc.value if hasattr(rc, "value") else int(rc)
        self.connack = (bool(flags.get("session present")), code)
        self.connected.set()

    def _on_disconnect(self, client, userdata, rc, *props):
        self.gone.set()

    def _on_message(self, client, userdata, m):
        self.got.append((m.topic, m.payload, m.qos, m.dup))

    def _on_subscribe(self, client, userdata, mid, granted, *props):
        codes = [g.value if hasattr(g, "value") else g for g in granted]
        with self.sub_cv:
            self.subacks[mid] = codes
            self.sub_cv.notify_all()

    def connect(self):
        """TCP connect and send CONNECT, then run the loop thread; no waiting."""
        if self.version == V5:
            props = None
            if self.session_expiry is not None:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = self.session_expiry
            self.c.connect(self.broker.host, self.broker.port, 60,
                           clean_start=self.clean, properties=props)
        else:
            self.c.connect(self.broker.host, self.broker.port, 60)
        self.c.loop_start()
        self.started = True

    def wait_connack(self, timeout=CONNECT_WAIT):
        if not self.connected.wait(timeout):
            raise AssertionError("%s: no CONNACK within %.0f s" % (self.client_id, timeout))
        if self.connack[1] != 0:
            raise AssertionError("%s: CONNACK code %d" % (self.client_id, self.connack[1]))
        return self.connack

    def subscribe(self, filters, qos, timeout=CONNECT_WAIT):
        """SUBSCRIBE to each filter at `qos`; fails unless every one is granted `qos`."""
        rc, mid = self.c.subscribe([(f, qos) for f in filters])
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("%s: paho subscribe failed rc=%d" % (self.client_id, rc))
        with self.sub_cv:
            if not self.sub_cv.wait_for(lambda: mid in self.subacks, timeout):
                raise AssertionError("%s: no SUBACK within %.0f s" % (self.client_id, timeout))
            codes = self.subacks[mid]
        if codes != [qos] * len(filters):
            raise AssertionError("%s: SUBACK %r for %r at QoS %d" % (self.client_id, codes, filters, qos))

    def count(self):
        return len(self.got)

    def drop(self):
        """Cut the connection without DISCONNECT, as a network failure would."""
        sock = self.c.socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.join()

    def join(self, timeout=5.0):
        """Wait for the loop thread to end; force the socket shut if it does not."""
        t = self.c._thread
        if t is None:
            return
        t.join(timeout)
        if t.is_alive():
            self.c._thread_terminate = True
            sock = self.c.socket()
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            t.join(2.0)

    def close(self):
        """DISCONNECT (if still connected) and stop the loop thread."""
        if not self.started:
            return
        if not self.gone.is_set():
            self.c.disconnect()
        self.join()
        self.started = False


class StressCase(unittest.TestCase):
    """Scenarios shared by the --threads classes below; ARGS are the mote flags."""

    ARGS = []

    def setUp(self):
        if os.environ.get("MOTE_STRESS_VERBOSE"):
            t0 = time.monotonic()
            # Registered first, so it runs last: the time includes the broker's exit.
            self.addCleanup(lambda: print("\n  %s took %.2f s" % (self.id(), time.monotonic() - t0)))

    def start_broker(self):
        return harness.started(self, extra_args=self.ARGS + MOTE_LIMITS,
                               mosquitto_conf=MOSQUITTO_LIMITS)

    def client(self, broker, client_id, version, **kw):
        c = Client(broker, client_id, version, **kw)
        self.addCleanup(c.close)
        return c

    def connected(self, broker, client_id, version, **kw):
        c = self.client(broker, client_id, version, **kw)
        c.connect()
        c.wait_connack()
        return c

    @staticmethod
    def wait_for(cond, timeout):
        """Poll cond() until true; on timeout return False (the caller reports)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return True
            time.sleep(0.02)
        return cond()

    def publish_all(self, client, plan, qos, rate=None, errors=None):
        """Publish (topic, payload) items in order; wait until all are sent
        (QoS 0) or acknowledged; rate limits to about `rate` messages/s."""
        infos = []
        t0 = time.monotonic()
        try:
            for i, (topic, payload) in enumerate(plan):
                info = client.c.publish(topic, payload, qos)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise AssertionError("%s: paho publish failed rc=%d" % (client.client_id, info.rc))
                infos.append(info)
                if rate is not None and i % 20 == 19:
                    ahead = t0 + (i + 1) / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
            deadline = time.monotonic() + DRAIN_WAIT
            for info in infos:
                left = deadline - time.monotonic()
                if left > 0:
                    info.wait_for_publish(left)   # returns nothing in paho 1.6.1
                if not info.is_published():
                    done = sum(1 for x in infos if x.is_published())
                    raise AssertionError("%s: only %d of %d publishes %s within %.0f s"
                                         % (client.client_id, done, len(infos),
                                            "written" if qos == 0 else "acknowledged", DRAIN_WAIT))
        except BaseException as e:  # reported by the test thread
            if errors is None:
                raise
            errors.append(e)

    def run_publishers(self, pubs, plans, qos, rate=None):
        """One thread per publisher, all started together; raises the first error."""
        errors = []
        threads = [threading.Thread(target=self.publish_all, args=(c, plan, qos, rate, errors),
                                    daemon=True) for c, plan in zip(pubs, plans)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DRAIN_WAIT + 30)
        if errors:
            raise errors[0]
        self.assertFalse(any(t.is_alive() for t in threads), "a publisher thread is stuck")

    def check_streams(self, name, got, expect, want_qos):
        """Compare one subscriber's messages with the expected seqs per (pub, topic).

        got: [(topic, payload, qos, dup)] in arrival order; expect: {(pub, topic): [seq]}.
        Returns a list of problems (empty when everything matches exactly)."""
        streams = defaultdict(list)
        problems = []
        for topic, payload, qos, dup in got:
            ps = parse_payload(payload)
            if ps is None:
                problems.append("%s: unexpected payload %r on %s" % (name, payload[:40], topic))
                continue
            if payload != make_payload(*ps):
                problems.append("%s: payload of pub %d seq %d corrupted on %s: %r"
                                % (name, ps[0], ps[1], topic, payload[:40]))
            if qos != want_qos:
                problems.append("%s: pub %d seq %d on %s arrived at QoS %d, expected %d"
                                % (name, ps[0], ps[1], topic, qos, want_qos))
            if dup:
                # 3.3.1.1: DUP is 1 only on a re-delivery, and nothing reconnects here.
                problems.append("%s: pub %d seq %d on %s arrived with DUP set"
                                % (name, ps[0], ps[1], topic))
            streams[(ps[0], topic)].append(ps[1])
        for key in sorted(set(expect) | set(streams)):
            diff = first_difference(streams.get(key, []), expect.get(key, []))
            if diff is not None:
                problems.append("%s: pub %d on %s: %s" % (name, key[0], key[1], diff))
        return problems

    def fail_on(self, problems, broker, note=""):
        if problems:
            shown = problems[:12]
            more = "\n  ... and %d more" % (len(problems) - len(shown)) if len(problems) > len(shown) else ""
            self.fail("%s%d problem(s):\n  %s%s" % (note, len(problems), "\n  ".join(shown), more))
        self.assertTrue(broker.alive(), "broker died:\n" + broker.log()[-4000:])

    # ------------------------------------------------------------------
    # Ordering and completeness with many publishers and subscribers

    # Subscriber filters: overlapping between subscribers, never within one,
    # so one copy per matching message is the only right answer in 3.1.1 and 5.0.
    FILTERS = [
        ["stress/#"],
        ["stress/+/0"],
        ["stress/all"],
        ["stress/+/+"],
        ["stress/1/#", "stress/2/1"],
        ["+/all", "stress/5/+"],
        ["stress/0/0", "stress/3/2", "stress/7/1"],
        ["#"],
    ]

    def fan_scenario(self, pub_qos, sub_qos, per_pub, rate=None, tag="f"):
        b = self.start_broker()
        npub = 8
        subs = []
        for i, filters in enumerate(self.FILTERS):
            s = self.connected(b, "%s-sub%d" % (tag, i), V5 if i % 2 == 0 else V311)
            s.subscribe(filters, sub_qos[i % len(sub_qos)])
            subs.append(s)
        pubs = [self.connected(b, "%s-pub%d" % (tag, p), V311 if p % 2 == 0 else V5)
                for p in range(npub)]

        plans = []
        for p in range(npub):
            rng = random.Random(1000 + p)     # fixed: a failure can be rerun exactly
            topics = ["stress/%d/0" % p, "stress/%d/1" % p, "stress/%d/2" % p, "stress/all"]
            plan = []
            topic = topics[0]
            for seq in range(per_pub):
                if rng.random() < 0.4:        # runs on one topic, then a switch
                    topic = rng.choice(topics)
                plan.append((topic, make_payload(p, seq)))
            plans.append(plan)

        expects = []
        for i, filters in enumerate(self.FILTERS):
            exp = defaultdict(list)
            for p, plan in enumerate(plans):
                for seq, (topic, _) in enumerate(plan):
                    if any(topic_matches(f, topic) for f in filters):
                        exp[(p, topic)].append(seq)
            expects.append(exp)
        totals = [sum(len(v) for v in e.values()) for e in expects]

        t0 = time.monotonic()
        self.run_publishers(pubs, plans, pub_qos, rate)
        arrived = self.wait_for(lambda: all(s.count() >= n for s, n in zip(subs, totals)),
                                DRAIN_WAIT)
        time.sleep(QUIET)                  # room for duplicates or strays to show
        took = time.monotonic() - t0
        note = ""
        if not arrived:
            note = "not all arrived within %.0f s (%s): " % (
                DRAIN_WAIT, ", ".join("sub%d %d/%d" % (i, s.count(), n)
                                      for i, (s, n) in enumerate(zip(subs, totals))))
        problems = []
        for i, (s, exp) in enumerate(zip(subs, expects)):
            want_qos = min(pub_qos, sub_qos[i % len(sub_qos)])
            problems += self.check_streams("sub%d %s" % (i, self.FILTERS[i]), list(s.got), exp, want_qos)
        if not problems and note:
            problems.append(note)
        self.fail_on(problems, b, note)
        if os.environ.get("MOTE_STRESS_VERBOSE"):
            print("\n  %s: %d publishes, %d deliveries in %.2f s"
                  % (self.id(), npub * per_pub, sum(totals), took))

    def test_qos1_order_and_completeness(self):
        # Subscriptions at QoS 1 and 2: delivered QoS is the minimum, 1 (4.3).
        self.fan_scenario(1, [1, 2], scaled(1000, 50), tag="q1")

    def test_qos2_exactly_once_in_order(self):
        self.fan_scenario(2, [2], scaled(500, 50), tag="q2")

    def test_qos0_order_and_completeness_at_moderate_rate(self):
        # ~1500 messages/s per publisher: far from filling a 4 MiB output
        # buffer, so the broker has no reason to drop a QoS 0 message.
        self.fan_scenario(0, [0, 1, 2], scaled(1000, 50), rate=1500, tag="q0")

    # ------------------------------------------------------------------
    # Many connections at once

    def test_many_connections_each_get_their_own(self):
        b = self.start_broker()
        # Capped whatever the scale: paho 1.6.1 waits in select(), which fails
        # for descriptors >= 1024, and each client holds three (its socket and
        # a wake-up socket pair).
        n = min(scaled(200, 20), 250)
        rounds = 3
        clients = [self.client(b, "many-%d" % i, V5 if i % 2 else V311) for i in range(n)]
        barrier = threading.Barrier(n)
        errors = []

        def join_in(c, i):
            try:
                barrier.wait(CONNECT_WAIT)
                c.connect()
                c.wait_connack()
                c.subscribe(["many/%d" % i, "many/common"], 1)
            except BaseException as e:
                errors.append("%s: %r" % (c.client_id, e))

        threads = [threading.Thread(target=join_in, args=(c, i), daemon=True)
                   for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(CONNECT_WAIT * 3)
        self.assertEqual(errors, [], "connect/subscribe failed for %d of %d clients" % (len(errors), n))
        self.assertFalse(any(t.is_alive() for t in threads), "connect/subscribe threads stuck")

        pub = self.connected(b, "many-pub", V5)
        plan = []
        for r in range(rounds):
            for i in range(n):
                plan.append(("many/%d" % i, b"%d:%d" % (i, r)))
            plan.append(("many/common", b"%d:%d" % (n, r)))
        self.publish_all(pub, plan, 1)

        per_client = 2 * rounds
        arrived = self.wait_for(lambda: all(c.count() >= per_client for c in clients),
                                DRAIN_WAIT)
        time.sleep(QUIET)
        problems = []
        for i, c in enumerate(clients):
            got = [(t, p, q) for t, p, q, _ in c.got]
            want_own = [("many/%d" % i, b"%d:%d" % (i, r), 1) for r in range(rounds)]
            want_common = [("many/common", b"%d:%d" % (n, r), 1) for r in range(rounds)]
            own = [m for m in got if m[0] != "many/common"]
            common = [m for m in got if m[0] == "many/common"]
            if own != want_own or common != want_common:
                problems.append("%s: got own %r and common %r" % (c.client_id, own, common))
        note = "" if arrived else "not all arrived within %.0f s: " % DRAIN_WAIT
        self.fail_on(problems, b, note)

    # ------------------------------------------------------------------
    # Session takeover and resumption while messages stream in

    def test_session_takeover_under_load(self):
        b = self.start_broker()
        per_pub = scaled(1500, 100)
        duration = max(1.0, 3.0 * min(SCALE, 1.0))
        reconnects = 6
        # One persistent 3.1.1 session and one 5.0 session, both at QoS 1.
        kinds = [(V311, "take-v311"), (V5, "take-v5")]

        def incarnation(version, cid, first):
            if version == V5:
                c = self.client(b, cid, V5, clean=first, session_expiry=300)
            else:
                c = self.client(b, cid, V311, clean=False)
            c.connect()
            present, _ = c.wait_connack()
            want = not first
            if present != want:
                raise AssertionError("%s: session present %s on %s connect, expected %s"
                                     % (cid, present, "first" if first else "a later", want))
            return c

        lives = {}
        for version, cid in kinds:
            c = incarnation(version, cid, True)
            c.subscribe(["take/+"], 1)
            lives[cid] = [c]

        pubs = [self.connected(b, "take-pub%d" % p, V311 if p == 0 else V5) for p in range(2)]
        plans = [[("take/%d" % p, make_payload(p, seq)) for seq in range(per_pub)] for p in range(2)]
        errors = []
        threads = [threading.Thread(target=self.publish_all,
                                    args=(c, plan, 1, per_pub / duration, errors), daemon=True)
                   for c, plan in zip(pubs, plans)]
        for t in threads:
            t.start()

        # Alternate takeover (new connection while the old is up: the broker
        # must close the old one) and drop (no DISCONNECT, a gap, then resume).
        for r in range(reconnects):
            time.sleep(duration / (reconnects + 1))
            for version, cid in kinds:
                old = lives[cid][-1]
                if r % 2 == 0:
                    new = incarnation(version, cid, False)
                    if not old.gone.wait(CONNECT_WAIT):
                        raise AssertionError("%s: old connection still open %.0f s after takeover"
                                             % (cid, CONNECT_WAIT))
                    old.join()
                else:
                    old.drop()
                    time.sleep(0.05)
                    new = incarnation(version, cid, False)
                lives[cid].append(new)

        for t in threads:
            t.join(DRAIN_WAIT + 30)
        if errors:
            raise errors[0]
        self.assertFalse(any(t.is_alive() for t in threads), "a publisher thread is stuck")

        def covered(cid):
            seen = set()
            for c in lives[cid]:
                for _, payload, _, _ in list(c.got):
                    seen.add(payload)
            return len(seen) >= 2 * per_pub

        arrived = self.wait_for(lambda: all(covered(cid) for _, cid in kinds), DRAIN_WAIT)
        time.sleep(QUIET)
        problems = []
        for _, cid in kinds:
            # Everything one broker-side session sent, in the order it was sent:
            # each connection's arrivals, connections in the order they were made.
            arrivals = [m for c in lives[cid] for m in list(c.got)]
            firsts = defaultdict(list)
            seen = set()
            dups = 0
            for topic, payload, qos, dup in arrivals:
                ps = parse_payload(payload)
                if ps is None or payload != make_payload(*ps) or topic != "take/%d" % ps[0] or qos != 1:
                    problems.append("%s: unexpected message %r at QoS %d on %s" % (cid, payload[:40], qos, topic))
                    continue
                if ps in seen:
                    # A second copy can only be a re-delivery, which must say so
                    # (3.3.1.1); a DUP 0 copy means the session queued it twice.
                    if not dup:
                        problems.append("%s: pub %d seq %d arrived again with DUP 0"
                                        % (cid, ps[0], ps[1]))
                    dups += 1
                    continue
                seen.add(ps)
                firsts[ps[0]].append(ps[1])
            for p in range(2):
                got = firsts.get(p, [])
                want = list(range(per_pub))
                if got != want:
                    problems.append("%s: pub %d, first arrivals: %s" % (cid, p, first_difference(got, want)))
            if os.environ.get("MOTE_STRESS_VERBOSE"):
                print("\n  %s: %d arrivals, %d redelivered duplicates, %d connections"
                      % (cid, len(arrivals), dups, len(lives[cid])))
        note = "" if arrived else "not all arrived within %.0f s: " % DRAIN_WAIT
        if not problems and note:
            problems.append(note)
        self.fail_on(problems, b, note)


class Threads4(StressCase):
    ARGS = ["--threads", "4"]


@unittest.skipIf(harness.broker_kind() != "mote", "--threads 1 would repeat the mosquitto run")
class Threads1(StressCase):
    ARGS = ["--threads", "1"]


del StressCase  # only the --threads classes run

if __name__ == "__main__":
    harness.main()
