"""durability.py - what test_durability*.py share: a broker that is crashed and
restarted on one data folder, persistent paho sessions, numbered payloads that
prove their own integrity, and a reader of the journal's segment files.

The contract the tests hold the hub to is docs/durability.md (and the
durability contract of issue 4): whatever the hub acknowledged survives
SIGKILL under every --fsync policy.
"""
import os
import re
import struct
import time

import rawmqtt
from peers_paho import V5, V311, PeerCase, connect_props

LONG = 3600                  # session expiry of a session that must outlive the test
MAGIC = b"MOTEJRNL"
SEG_HDR = 32                 # docs/durability.md: segment header
REC_HDR = 9                  # u32 length, u8 type, u32 CRC32C


def payload(n, tag=b"d"):
    """Message n's payload: its number first, then filler derived from n whose
    length varies (10..1500 bytes) so records of many sizes are written and torn."""
    head = b"%s%08d:" % (tag, n)
    size = (n * 7919) % 1490
    unit = b"%08d" % ((n * 2654435761) & 0xFFFFFFFF)
    return head + (unit * (size // len(unit) + 1))[:size]


def number_of(data, tag=b"d"):
    """The number in a payload() payload, or an AssertionError if it is not one intact."""
    m = re.match(re.escape(tag) + rb"(\d{8}):", data)
    if not m:
        raise AssertionError("not a numbered payload: %r" % data[:40])
    n = int(m.group(1))
    if data != payload(n, tag):
        raise AssertionError("payload of message %d damaged: %d bytes %r..."
                             % (n, len(data), data[:40]))
    return n


def segments(data_dir):
    """Journal segment files of a data folder, oldest first."""
    jdir = os.path.join(data_dir, "journal")
    names = sorted(f for f in os.listdir(jdir) if re.fullmatch(r"\d{8}\.log", f))
    return [os.path.join(jdir, f) for f in names]


def records(path):
    """(offset, total length) of each record of an intact segment file, in order."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != MAGIC:
        raise AssertionError("%s: no segment header" % path)
    out, off = [], SEG_HDR
    while off + REC_HDR <= len(data):
        length = struct.unpack_from("<I", data, off)[0]
        if data[off + 4] == 0 or off + REC_HDR + length > len(data):
            break
        out.append((off, REC_HDR + length))
        off += REC_HDR + length
    return out


def recovered(broker, timeout=5.0):
    """The fields of the start-up line event=journal_recovered of the latest start, as ints."""
    m = broker.wait_log(r"event=journal_recovered (.*)", timeout)
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)\b", m.group(1))}


class DurableCase(PeerCase):
    """PeerCase with persistent sessions and raw clients, all cleaned up."""

    def start_broker(self, extra_args=None, **kw):
        return super().start_broker(extra_args=extra_args, **kw)

    def written(self, peer):
        """Return once what the hub holds of peer's connection (its session,
        its will) is on disk. CONNACK is not held for the journal
        (docs/durability.md), but a QoS 1 PUBACK is when a persistent
        session subscribes anywhere, and the records of one client id are
        written in order (its shard stages them): so a QoS 1 publish to a
        topic nobody reads is a barrier."""
        self.assertLess(peer.publish("written/" + peer.name, b"", 1), 0x80)

    def persistent(self, broker, client_id, version=V5, create=False, expiry=LONG, **kw):
        """A connected paho Peer with a kept session: 3.1.1 clean session 0, or
        5.0 with Session Expiry `expiry`; create=True starts the session anew."""
        if version == V5:
            return self.peer(broker, client_id, V5, clean=create,
                             props=connect_props(SessionExpiryInterval=expiry), **kw)
        return self.peer(broker, client_id, V311, clean=False, **kw)

    def raw(self, broker, version=V5, timeout=5.0):
        c = rawmqtt.RawClient(broker.host, broker.port, version, timeout)
        self.addCleanup(c.close)
        return c

    def raw_persistent(self, broker, client_id, version=V5, create=False, expiry=LONG):
        """A raw client connected with a kept session; returns (client, CONNACK)."""
        c = self.raw(broker, version)
        kw = dict(clean=create, version=version)
        if version == V5:
            kw["props"] = [(rawmqtt.SESSION_EXPIRY_INTERVAL, expiry)]
        elif create:
            # 3.1.1 has no clean start + keep: clean session 1 wipes the old
            # state but also ends the session at disconnect, so start anew
            # with 1 and reconnect with 0.
            c.connect(client_id, clean=True, version=version)
            c.disconnect()
            c = self.raw(broker, version)
            kw["clean"] = False
        ack = c.connect(client_id, **kw)
        return c, ack

    def assert_alive(self, broker):
        self.assertTrue(broker.alive(), "broker exited:\n" + broker.log()[-3000:])


def wait_until(cond, timeout, step=0.005):
    """Poll cond() until true; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)
