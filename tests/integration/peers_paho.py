"""peers_paho.py - a paho-mqtt 1.6.1 client driven for tests, with blocking waits.

A Peer is one network connection of Debian's paho client to the broker under
test. Every packet the broker sends is recorded raw (type, flags, body) before
paho handles it, so a test can assert reason codes paho does not surface (PUBACK
0x99, DISCONNECT 0x8E, the CONNACK of a refused connection). Application
messages are collected in arrival order as Msg tuples; `expect` takes the next
N of them or fails after a timeout, `expect_none` asserts that nothing more
arrives within a short window.

paho's network loop runs in a thread owned by the Peer (not loop_start) so a
test can stop it at once: `kill()` closes the socket without DISCONNECT (the
broker must treat it as a network failure), `freeze()` leaves the socket open
but silent (the keep-alive case). `hold_acks()` makes paho keep its PUBACKs for
inbound QoS 1 messages until `release_acks()`, which is how a test plays a slow
consumer against the broker's Receive Maximum handling; paho 1.6.1 has no public
manual-ack API, so this replaces one private method of that client.

One Peer is one connection: reconnecting is done with a new Peer and the same
client id, which is what a session test needs to see anyway.
"""
import socket
import struct
import threading
import time
import unittest
from collections import namedtuple

import harness

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCodes
from paho.mqtt.subscribeoptions import SubscribeOptions

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5

WAIT = 5.0      # longest wait for something that must arrive
QUIET = 0.7     # window in which something must NOT arrive

# MQTT control packet types (first byte >> 4).
CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 2, 3, 4, 5, 6, 7
SUBACK, UNSUBACK, PINGRESP, DISCONNECT = 9, 11, 13, 14

Msg = namedtuple("Msg", "topic payload qos retain dup mid props")
Msg.__doc__ = "One application message as received: props is a dict (empty in 3.1.1)."
Connack = namedtuple("Connack", "session_present rc props")
Will = namedtuple("Will", "topic payload qos retain props")
Will.__new__.__defaults__ = (b"", 0, False, None)


def props(packet_type, **values):
    """Build a paho Properties for `packet_type` (a PacketTypes member).

    UserProperty takes a list of (key, value) pairs, sent in that order."""
    p = Properties(packet_type)
    for name, value in values.items():
        if name == "UserProperty":
            for pair in value:
                p.UserProperty = tuple(pair)
        else:
            setattr(p, name, value)
    return p


def props_dict(p):
    """The properties a Properties object holds, as {CompressedName: value}."""
    out = {}
    if p is None:
        return out
    for name in p.names:
        key = name.replace(" ", "")
        if hasattr(p, key):
            out[key] = getattr(p, key)
    return out


def decode_props(packet_type, buf):
    """Parse a property block (length prefix included) into a dict."""
    p = Properties(packet_type)
    p.unpack(bytearray(buf))
    return props_dict(p)


class Peer:
    """One paho connection. Use `connect()` first; see the module comment."""

    def __init__(self, broker, client_id, version=V5, clean=True, keepalive=60,
                 username=None, password=None, will=None, name=None):
        self.broker = broker
        self.version = version
        self.client_id = client_id
        self.clean = clean
        self.keepalive = keepalive
        self.name = name or client_id or "(empty id)"
        if version == V5:
            self.c = mqtt.Client(client_id=client_id, protocol=V5,
                                 reconnect_on_failure=False)
        else:
            # paho refuses an empty id without clean session; the test of the
            # broker's answer to exactly that needs the flag set behind its back.
            self.c = mqtt.Client(client_id=client_id, protocol=version,
                                 clean_session=clean or not client_id,
                                 reconnect_on_failure=False)
            self.c._clean_session = clean
        if username is not None:
            self.c.username_pw_set(username, password)
        if will is not None:
            self.c.will_set(will.topic, will.payload, will.qos, will.retain,
                            properties=will.props)
        self._cv = threading.Condition()
        self.packets = []        # (type, flags, body bytes, monotonic time)
        self.msgs = []           # Msg, arrival order
        self.msg_times = []      # monotonic time of each Msg
        self._taken = 0          # msgs already returned by expect()
        self.closed = False
        self.closed_at = None
        self.connack = None
        self._held = None        # list of held PUBACK ids when hold_acks() is on
        self._stop = threading.Event()
        self._thread = None
        self._frozen_sock = None

        orig_handle = self.c._packet_handle

        def tap():
            cmd = self.c._in_packet["command"]
            body = bytes(self.c._in_packet["packet"])
            with self._cv:
                self.packets.append((cmd >> 4, cmd & 0x0F, body, time.monotonic()))
                self._cv.notify_all()
            return orig_handle()

        self.c._packet_handle = tap
        self.c.on_message = self._on_message

    # ---- connection -------------------------------------------------------

    def connect(self, clean=None, props=None, expect_rc=0, timeout=WAIT):
        """Send CONNECT and wait for CONNACK; returns a Connack.

        `clean` is clean start (5.0) and defaults to the constructor's value;
        fails unless the CONNACK reason/return code is `expect_rc` (None: any)."""
        if clean is None:
            clean = self.clean
        self.c._thread = threading.current_thread()  # keep paho from writing inline
        if self.version == V5:
            self.c.connect(self.broker.host, self.broker.port, self.keepalive,
                           clean_start=clean, properties=props)
        else:
            self.c.connect(self.broker.host, self.broker.port, self.keepalive)
        self._thread = threading.Thread(target=self._run, name="peer-" + self.name,
                                        daemon=True)
        self.c._thread = self._thread
        self._thread.start()
        pkt = self.wait_packet(CONNACK, timeout=timeout)
        if pkt is None:
            raise AssertionError("%s: no CONNACK within %.1f s" % (self.name, timeout))
        body = pkt[2]
        rc = body[1]
        p = decode_props(PacketTypes.CONNACK, body[2:]) if self.version == V5 and len(body) > 2 else {}
        self.connack = Connack(bool(body[0] & 1), rc, p)
        if expect_rc is not None and rc != expect_rc:
            raise AssertionError("%s: CONNACK code 0x%02x, expected 0x%02x"
                                 % (self.name, rc, expect_rc))
        return self.connack

    def _run(self):
        while not self._stop.is_set():
            if self.c._sock is None:
                break
            self.c.loop(timeout=0.05)
        with self._cv:
            if self.c._sock is None and not self.closed:
                self.closed = True
                self.closed_at = time.monotonic()
            self._cv.notify_all()

    def _stop_thread(self):
        self._stop.set()
        if self.c._sockpairW is not None:
            try:
                self.c._sockpairW.send(b"x")
            except OSError:
                pass
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def disconnect(self, reason=None, props=None, timeout=WAIT):
        """Normal DISCONNECT (5.0: with `reason`, an int, if given); waits for the close."""
        rc = None
        if reason is not None:
            rc = ReasonCodes(PacketTypes.DISCONNECT, identifier=reason)
        self.c.disconnect(reasoncode=rc, properties=props)
        if not self.wait_closed(timeout):
            raise AssertionError("%s: DISCONNECT was not written within %.1f s" % (self.name, timeout))
        self.close()

    def kill(self):
        """Close the socket with no DISCONNECT, as a crashed device would."""
        self._stop_thread()
        sock = self.c._sock
        self.c._sock = None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        with self._cv:
            self.closed = True
            self.closed_at = time.monotonic()
            self._cv.notify_all()

    def freeze(self):
        """Stop all traffic (no PINGREQ, no reads) but keep the socket open."""
        self._stop_thread()
        self._frozen_sock = self.c._sock
        self.c._sock = None

    def wait_frozen_closed(self, timeout=WAIT):
        """After freeze(): seconds until the broker closed the socket, or None.

        Also returns the bytes the broker sent meanwhile (a DISCONNECT, maybe)."""
        sock = self._frozen_sock
        t0 = time.monotonic()
        data = b""
        sock.setblocking(True)
        while time.monotonic() - t0 < timeout:
            sock.settimeout(max(0.01, timeout - (time.monotonic() - t0)))
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                break
            except OSError:
                return time.monotonic() - t0, data
            if not chunk:
                return time.monotonic() - t0, data
            data += chunk
        return None, data

    def close(self):
        """Release the thread and socket; safe to call more than once."""
        self._stop_thread()
        for sock in (self.c._sock, self._frozen_sock):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self.c._sock = None
        self._frozen_sock = None
        self.c._reset_sockets()

    def wait_closed(self, timeout=WAIT):
        """True once the connection is closed (by either side)."""
        with self._cv:
            return self._cv.wait_for(lambda: self.closed, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- raw packets ------------------------------------------------------

    def wait_packet(self, ptype, pred=None, timeout=WAIT, start=0):
        """First recorded packet of `ptype` (from index `start`) matching pred(body)."""
        def find():
            for p in self.packets[start:]:
                if p[0] == ptype and (pred is None or pred(p[2])):
                    return p
            return None
        with self._cv:
            self._cv.wait_for(lambda: find() is not None or self.closed, timeout)
            return find()

    def packets_of(self, ptype):
        with self._cv:
            return [p for p in self.packets if p[0] == ptype]

    def disconnect_reason(self, timeout=WAIT):
        """Reason code of a DISCONNECT the broker sent (0 if it had none), or None."""
        pkt = self.wait_packet(DISCONNECT, timeout=timeout)
        if pkt is None:
            return None
        return pkt[2][0] if pkt[2] else 0

    # ---- messages ---------------------------------------------------------

    def _on_message(self, client, userdata, m):
        p = props_dict(getattr(m, "properties", None)) if self.version == V5 else {}
        msg = Msg(m.topic, bytes(m.payload), m.qos, bool(m.retain), bool(m.dup), m.mid, p)
        with self._cv:
            self.msgs.append(msg)
            self.msg_times.append(time.monotonic())
            self._cv.notify_all()

    def expect(self, n=1, timeout=WAIT):
        """The next n messages; fails if fewer arrive within timeout."""
        with self._cv:
            ok = self._cv.wait_for(lambda: len(self.msgs) - self._taken >= n, timeout)
            got = self.msgs[self._taken:self._taken + n]
            if not ok:
                raise AssertionError("%s: expected %d message(s) within %.1f s, got %d: %r"
                                     % (self.name, n, timeout, len(got), got[:5]))
            self._taken += n
            return got

    def expect_one(self, timeout=WAIT):
        return self.expect(1, timeout)[0]

    def expect_none(self, window=QUIET):
        """Fails if any message beyond those already taken arrives within window."""
        with self._cv:
            self._cv.wait_for(lambda: len(self.msgs) > self._taken, window)
            extra = self.msgs[self._taken:]
        if extra:
            raise AssertionError("%s: expected no message, got %d: %r"
                                 % (self.name, len(extra), extra[:5]))

    def collect(self, window):
        """All messages arriving within window (plus any pending), taken."""
        time.sleep(window)
        with self._cv:
            got = self.msgs[self._taken:]
            self._taken = len(self.msgs)
            return got

    def count(self):
        with self._cv:
            return len(self.msgs) - self._taken

    # ---- operations -------------------------------------------------------

    def subscribe(self, topic, qos=0, no_local=False, rap=False, rh=0, sub_id=None,
                  timeout=WAIT):
        """SUBSCRIBE one filter or a list of (filter, qos) / (filter, SubscribeOptions).

        Returns the SUBACK codes as ints (granted QoS or reason codes)."""
        p = None
        if sub_id is not None:
            p = props(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=sub_id)
        if isinstance(topic, list):
            req = topic
        elif self.version == V5:
            req = [(topic, SubscribeOptions(qos=qos, noLocal=no_local,
                                            retainAsPublished=rap, retainHandling=rh))]
        else:
            req = [(topic, qos)]
        start = len(self.packets)
        if self.version == V5:
            rc, mid = self.c.subscribe(req, properties=p)
        else:
            rc, mid = self.c.subscribe(req)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("%s: paho subscribe failed rc=%d" % (self.name, rc))
        pkt = self.wait_packet(SUBACK, lambda b: struct.unpack("!H", b[:2])[0] == mid,
                               timeout, start)
        if pkt is None:
            raise AssertionError("%s: no SUBACK for %r" % (self.name, req))
        return self._ack_codes(pkt[2])

    def _ack_codes(self, full_body):
        """Reason codes after the packet id (and, in 5.0, the properties)."""
        body = full_body[2:]
        if self.version == V5:
            plen, n = decode_varint(body)
            body = body[n + plen:]
        return list(body)

    def unsubscribe(self, topics, timeout=WAIT):
        """UNSUBSCRIBE; returns the UNSUBACK reason codes (5.0) or [] (3.1.1)."""
        if not isinstance(topics, list):
            topics = [topics]
        start = len(self.packets)
        rc, mid = self.c.unsubscribe(topics)
        if rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("%s: paho unsubscribe failed rc=%d" % (self.name, rc))
        pkt = self.wait_packet(UNSUBACK, lambda b: struct.unpack("!H", b[:2])[0] == mid,
                               timeout, start)
        if pkt is None:
            raise AssertionError("%s: no UNSUBACK for %r" % (self.name, topics))
        return self._ack_codes(pkt[2])

    def publish(self, topic, payload=b"", qos=0, retain=False, props=None, wait=True,
                timeout=WAIT):
        """PUBLISH; with wait, blocks until written (QoS 0) or acknowledged.

        Returns the reason code of the PUBACK (QoS 1) or PUBREC (QoS 2), 0 for
        QoS 0, or the paho MessageInfo when wait is False."""
        start = len(self.packets)
        info = self.c.publish(topic, payload, qos, retain, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise AssertionError("%s: paho publish failed rc=%d" % (self.name, info.rc))
        if not wait:
            return info
        if qos == 0:
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise AssertionError("%s: QoS 0 publish not written" % self.name)
            return 0
        ack = PUBACK if qos == 1 else PUBREC
        pkt = self.wait_packet(ack, lambda b: struct.unpack("!H", b[:2])[0] == info.mid,
                               timeout, start)
        if pkt is None:
            raise AssertionError("%s: no %s for message id %d on %s"
                                 % (self.name, "PUBACK" if qos == 1 else "PUBREC",
                                    info.mid, topic))
        if qos == 2:
            info.wait_for_publish(timeout)  # PUBCOMP
        return pkt[2][2] if len(pkt[2]) > 2 else 0

    # ---- slow consumer ----------------------------------------------------

    def hold_acks(self):
        """From now on keep the PUBACK of inbound QoS 1 messages (see module comment)."""
        held = []
        self._held = held

        def send_puback(mid):
            with self._cv:
                held.append(mid)
            return mqtt.MQTT_ERR_SUCCESS

        self._orig_puback = mqtt.Client._send_puback.__get__(self.c)
        self.c._send_puback = send_puback

    def release_acks(self, n=None):
        """Send n (default all) of the held PUBACKs, oldest first."""
        with self._cv:
            take = self._held[:n] if n is not None else list(self._held)
            del self._held[:len(take)]
        for mid in take:
            self._orig_puback(mid)
        return take


def decode_varint(buf):
    """(value, bytes used) of the variable byte integer at the start of buf."""
    value, mult, i = 0, 1, 0
    while True:
        b = buf[i]
        value += (b & 0x7F) * mult
        i += 1
        if b & 0x80 == 0:
            return value, i
        mult *= 128


def connected(broker, client_id, version=V5, clean=True, keepalive=60, props=None,
              will=None, username=None, password=None, name=None):
    """A Peer that is connected (CONNACK 0) or an AssertionError."""
    p = Peer(broker, client_id, version, clean=clean, keepalive=keepalive,
             username=username, password=password, will=will, name=name)
    try:
        p.connect(props=props)
    except BaseException:
        p.close()
        raise
    return p


def quiet(*peers, window=QUIET):
    """Fail if any of the peers gets a message within one shared window."""
    time.sleep(window)
    for p in peers:
        p.expect_none(0)


def connect_props(**values):
    return props(PacketTypes.CONNECT, **values)


def publish_props(**values):
    return props(PacketTypes.PUBLISH, **values)


def will_props(**values):
    return props(PacketTypes.WILLMESSAGE, **values)


class PeerCase(unittest.TestCase):
    """A TestCase that starts brokers and peers and always cleans them up.

    Brokers are stopped with the exit-status check of harness.Broker, so a
    sanitizer report or a crash fails the test that caused it."""

    def start_broker(self, extra_args=None, allow_anonymous=True, mosquitto_conf=""):
        return harness.started(self, extra_args=extra_args, allow_anonymous=allow_anonymous,
                               mosquitto_conf=mosquitto_conf)

    def peer(self, broker, client_id, version=V5, **kw):
        """A connected Peer, closed at the end of the test."""
        p = connected(broker, client_id, version, **kw)
        self.addCleanup(p.close)
        return p

    def unconnected(self, broker, client_id, version=V5, **kw):
        """A Peer not yet connected, closed at the end of the test."""
        p = Peer(broker, client_id, version, **kw)
        self.addCleanup(p.close)
        return p

    def assert_serving(self, broker, version=V5, tag="serving"):
        """A fresh subscriber gets a fresh publisher's QoS 1 message."""
        s = self.peer(broker, tag + "-s", version)
        s.subscribe("check/" + tag, 1)
        p = self.peer(broker, tag + "-p", version)
        p.publish("check/" + tag, b"alive", 1)
        m = s.expect_one()
        self.assertEqual((m.topic, m.payload, m.qos), ("check/" + tag, b"alive", 1))
        s.disconnect()
        p.disconnect()
